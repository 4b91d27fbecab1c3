"""The storage service: artifact metadata in SQL and bytes in S3."""
