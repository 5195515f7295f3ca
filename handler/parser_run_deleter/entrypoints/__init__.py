"""One Lambda handler and one composition root per function: ``api_function`` (API Gateway), ``queue_function`` (the
deletion queue) and ``callback_function`` (the callback queue); ``composition`` holds what the roots share."""
