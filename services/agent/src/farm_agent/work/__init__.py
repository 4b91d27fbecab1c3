"""Task intake and one attempt's life: pull by priority, run, retry, report, upload, ack or nak."""
