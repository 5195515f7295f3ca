"""Local development stack: loopback servers that stand in for the services the Lambda talks to."""
