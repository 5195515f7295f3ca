"""The API Gateway trigger: one Powertools resolver per payload version, sharing the routes and the error table.

REST APIs send payload 1.0 and HTTP APIs (and Function URLs) payload 2.0; ``handle_api_event`` picks the resolver
by the event's ``version``, serves the request, and writes its audit line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from parser_run_deleter.intake.api_audit import api_request, log_request, serving
from parser_run_deleter.intake.api_errors import ERROR_RESPONSES
from parser_run_deleter.intake.api_routes import router, serving_with
from parser_run_deleter.logic.api_use_cases import ApiServices
from parser_run_deleter.logic.deletion import Trigger
from parser_run_deleter.shared.observability import logger, metrics


def _resolver(app: ApiGatewayResolver) -> ApiGatewayResolver:
    app.include_router(router)
    for error_class, handler in ERROR_RESPONSES.items():
        app.exception_handler(error_class)(handler)
    return app


rest_app: Final = _resolver(APIGatewayRestResolver())
http_app: Final = _resolver(APIGatewayHttpResolver())


def handle_api_event(
    event: dict[str, Any], context: LambdaContext, services: Callable[[], ApiServices]
) -> dict[str, Any]:
    """``services`` builds the function's services on first use: a misconfigured function is then a 503 from the
    error table, not a crash."""
    metrics.add_dimension(name="trigger", value=Trigger.API.value)
    request = api_request(event)
    if request.audit.request_id:
        logger.set_correlation_id(request.audit.request_id)
    app = http_app if event.get("version") == "2.0" else rest_app
    with serving(request), serving_with(services):
        response: dict[str, Any] = app.resolve(event, context)
    log_request(request, response.get("statusCode"))
    return response
