"""The operator CLI's command groups, each registering its commands with the parser."""
