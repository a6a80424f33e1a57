//! The probe crate's integration tests: `check` and `audit` against small
//! servers on 127.0.0.1, each giving one kind of wrong (or right) CORS answer
//! (`crossgate_testkit::probe_server`), and against CORS servers we did not
//! write (`third_party`).

mod audit;
mod audit_batch;
mod audit_false_positives;
mod check;
mod third_party;
mod workflows;
