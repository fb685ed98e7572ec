"""Organization Settings pages for org admins (Jinja, plain CSS): sign-in, SCIM integration,
activity, users, re-sync; and the admins' JSON endpoints under /admin/api/."""

from __future__ import annotations

from flask import Flask


def init_admin(app: Flask) -> None:
    from web.admin import config, filters
    from web.admin.views import bp

    config.apply_session_settings(app)
    filters.init_app(app)
    app.register_blueprint(bp)
