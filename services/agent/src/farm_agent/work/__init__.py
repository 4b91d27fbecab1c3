"""Task intake and one attempt's life: fetch by priority, run, retry, report, upload, ack."""
