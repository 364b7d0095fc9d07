//! Privileged integration tests: real containers on this host. They need root; in CI
//! (`CI=true`) they fail without it rather than skip.

mod backup;
mod boot;
mod disk;
mod hardening;
mod helpers;
mod isolation;
mod lifecycle;
mod limits;
