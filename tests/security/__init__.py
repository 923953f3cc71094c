"""Security as tests: no issued secret in any output, private encrypted stores, OAuth state, webhook limits."""
