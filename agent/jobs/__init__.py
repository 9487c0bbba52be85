"""Jobs: the record (model), the durable store, the spool for captures, the retry policy and the worker."""
