//! Connection state recovery from the event log (filled in below).
