"""The pure decisions: from a parent and what exists, what to write and what status to report. No I/O;
imports only `api`."""
