"""Command-line interface: ``cllm4rec <command> ...``."""
