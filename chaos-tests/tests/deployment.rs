//! The deployment's tools against a running cluster: the alert rules and
//! the dashboard use only metrics the processes export, and `couponctl`
//! works from a deployment's cluster file, not only the dev one.

mod deploy;
