/**
 * The Lambdas' Powertools loggers write JSON lines at INFO; a test run would print thousands. Unless the caller
 * asks for a level, they stay silent here; a test that reads log lines gives its logger an explicit level.
 * Loaded by .mocharc.json ("file").
 */
process.env.POWERTOOLS_LOG_LEVEL ??= "SILENT";
