"""One Lambda handler per function: ``api_function`` for API Gateway, ``queue_function`` for SQS."""
