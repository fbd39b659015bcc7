"""How the listener authentications appear in the OpenAPI schema at /api/schema/."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ListenerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "annotation.auth.ListenerTokenAuthentication"
    name = "listenerToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Listener <token>`, the token from POST /api/v1/listeners/.",
        }


class ListenerCookieScheme(OpenApiAuthenticationExtension):
    target_class = "annotation.auth.ListenerCookieAuthentication"
    name = "listenerCookie"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "oddball_listener",
            "description": "The listening page's cookie; writes also need the CSRF token.",
        }
