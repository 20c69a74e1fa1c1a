-- The `couponctl bench burst` workload for wrk: every request a distinct
-- pre-minted user token and a fresh Idempotency-Key, read from the file
-- `couponctl bench burst --write-requests FILE` wrote.
--   REQUESTS=FILE THREADS=2 wrk -t2 -c200 -d10s -s deploy/bench/wrk-burst.lua URL
-- (THREADS must equal -t). Thread k takes lines k, k+THREADS, …, so no
-- (user, key) pair is sent twice while lines last; write more lines than
-- the run can send (a wrapped-around line is a replay, answered 200).
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local file = os.getenv("REQUESTS") or "requests.txt"
  local threads = tonumber(os.getenv("THREADS") or "1")
  reqs = {}
  local n = 0
  for line in io.lines(file) do
    if n % threads == id then
      local auth, key, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      table.insert(reqs, wrk.format("POST", nil, {
        ["Authorization"] = auth,
        ["Idempotency-Key"] = key,
        ["Content-Type"] = "application/json",
      }, body))
    end
    n = n + 1
  end
  i = 0
end

function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
