"""The SSIS expression language: tokenizer, parser, evaluator, function library."""
