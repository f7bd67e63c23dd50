"""One module per revision; `core` and `domain` are independent branches with their own version tables."""
