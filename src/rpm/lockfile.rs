//! rpm-ostree lockfiles: `manifest-lock.<arch>.json`,
//! `manifest-lock.overrides[.<arch>].yaml` and the
//! `manifest-lock.generated.<arch>.json` every compose writes.
