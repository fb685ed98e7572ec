"""Organization Settings pages (server-rendered Jinja) and the admins' JSON endpoints."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from models import resync as r
from web import database
from web.admin import actions, security
from web.admin import config as cfg

log = logging.getLogger("workteam.admin")

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
SCIM = "/settings/integrations/scim"


@bp.before_request
def _before() -> None:
    if request.endpoint == "admin.resync_start":
        # An IdP export of a large organization is bigger than a SCIM request may be.
        request.max_content_length = cfg.get_int("WORKTEAM_RESYNC_MAX_EXPORT_BYTES")
    security.check_csrf()


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/admin/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _context() -> dict[str, Any]:
    return {"csrf_token": security.csrf_token, "admin": g.get("admin")}


def _wants_json() -> bool:
    return request.path.startswith("/admin/api/")


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> ResponseReturnValue:
    log.info("CSRF check failed: %s", error.description)
    if _wants_json():
        return jsonify(error="csrf", detail="missing or invalid CSRF token"), 400
    message = "The form expired or did not come from this site. Reload the page and try again."
    return render_template("admin/error.html", code=400, message=message), 400


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    if _wants_json():
        return jsonify(error=error.name, detail=error.description), code
    return render_template("admin/error.html", code=code, message=error.description), code


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> ResponseReturnValue:
    db_session = g.get("db_session")
    if db_session is not None:
        try:
            db_session.rollback()
        except Exception:
            log.warning("rollback failed", exc_info=True)
    log.exception("admin page error")
    if _wants_json():
        return jsonify(error="internal"), 500
    return render_template("admin/error.html", code=500, message="Something went wrong."), 500


# --- sign-in -------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        if security.load_admin() is not None:
            return redirect(url_for("admin.settings"))
        return render_template("admin/login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    chosen = request.form.get("org", "")
    next_url = request.form.get("next", "")
    try:
        allowed = security.sign_in_allowed(email)
    except Exception:
        log.warning("sign-in rate limiter unavailable", exc_info=True)
        abort(503, "Sign-in is temporarily unavailable. Try again in a minute.")
    if not allowed:
        return (
            render_template(
                "admin/login.html",
                error="Too many sign-in attempts. Wait a few minutes and try again.",
                email=email,
                next=next_url,
            ),
            429,
        )
    matches = security.authenticate(email, password) if email and password else []
    if chosen:
        matches = [user for user in matches if str(user.org_id) == chosen]
    if not matches:
        log.info("admin sign-in refused")
        return (
            render_template(
                "admin/login.html",
                error="Email or password is not right, or this account is not an admin.",
                email=email,
                next=next_url,
            ),
            401,
        )
    if len(matches) > 1:  # one person, several organizations: ask which
        from models.organization import Organization

        orgs = [database.session().get(Organization, user.org_id) for user in matches]
        return render_template(
            "admin/login.html", email=email, orgs=orgs, next=next_url, choose=True
        )
    security.start_session(matches[0])
    log.info("admin signed in", extra={"org_id": str(matches[0].org_id)})
    return redirect(security.safe_next(next_url))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    security.end_session()
    flash("You are signed out.")
    return redirect(url_for("admin.login"))


# --- Organization Settings ------------------------------------------------------------------


@bp.get("/")
@security.login_required
def index() -> ResponseReturnValue:
    return redirect(url_for("admin.settings"))


@bp.get("/settings")
@security.login_required
def settings() -> ResponseReturnValue:
    tab = request.args.get("tab", "settings")
    if tab not in ("settings", "integrations"):
        tab = "settings"
    org = security.current_org()
    return render_template(
        "admin/settings.html",
        org=org,
        tab=tab,
        status=actions.scim_status(database.session(), org),
    )


def _scim_page(**extra: Any) -> ResponseReturnValue:
    session = database.session()
    org = security.current_org()
    latest = actions.resync_job(session, org)
    return render_template(
        "admin/scim.html",
        org=org,
        section="settings",
        status=actions.scim_status(session, org),
        resync=r.job_json(latest) if latest else None,
        **extra,
    )


@bp.get(SCIM)
@security.login_required
def scim() -> ResponseReturnValue:
    return _scim_page()


@bp.post(SCIM + "/token")
@security.login_required
def generate_token() -> ResponseReturnValue:
    org = security.current_org()
    try:
        raw = actions.generate_token(database.session(), org)
    except actions.ActionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.scim"))
    log.info("bearer token generated", extra={"org_id": str(org.id)})
    # Rendered, not redirected: the token is never in a URL, a session or a log, only here.
    return _scim_page(new_token=raw)


@bp.post(SCIM + "/enabled")
@security.login_required
def set_enabled() -> ResponseReturnValue:
    org = security.current_org()
    enabled = request.form.get("enabled") == "on"
    try:
        actions.set_enabled(database.session(), org, enabled)
        flash(f"SCIM User Provisioning is {'enabled' if enabled else 'disabled'}.")
    except actions.ActionError as exc:
        flash(str(exc), "error")
    if request.form.get("back") == "integrations":
        return redirect(url_for("admin.settings", tab="integrations"))
    return redirect(url_for("admin.scim"))


@bp.get(SCIM + "/activity")
@security.login_required
def activity() -> ResponseReturnValue:
    org = security.current_org()
    filters = {
        "method": request.args.get("method", "").upper() or None,
        "status": request.args.get("status", "").strip() or None,
        "path": request.args.get("path", "").strip() or None,
    }
    page = request.args.get("page", "1")
    error = None
    try:
        result = actions.activity(
            database.session(), org, page=int(page) if page.isdigit() else 1,
            method=filters["method"], status=filters["status"], path=filters["path"],
        )
    except actions.ActionError as exc:
        error = str(exc)
        result = actions.activity(database.session(), org, method=filters["method"])
    return render_template(
        "admin/activity.html",
        org=org,
        section="activity",
        result=result,
        retention_days=current_app.config["AUDIT_RETENTION_DAYS"],
        filters={k: v or "" for k, v in filters.items()},
        error=error,
        status=actions.scim_status(database.session(), org),
    )


@bp.get(SCIM + "/users")
@security.login_required
def users() -> ResponseReturnValue:
    org = security.current_org()
    session = database.session()
    return render_template(
        "admin/users.html",
        org=org,
        section="users",
        overview=actions.users_overview(session, org),
        status=actions.scim_status(session, org),
    )


@bp.post(SCIM + "/jobs/<int:job_id>/retry")
@security.login_required
def retry_job(job_id: int) -> ResponseReturnValue:
    try:
        actions.retry_job(database.session(), security.current_org(), job_id)
        flash(f"Job {job_id} is queued again.")
    except actions.ActionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.users"))


# --- re-sync -------------------------------------------------------------------------------


@bp.get(SCIM + "/resync")
@security.login_required
def resync() -> ResponseReturnValue:
    org = security.current_org()
    session = database.session()
    job_id = request.args.get("job", "")
    job = actions.resync_job(session, org, int(job_id) if job_id.isdigit() else None)
    return render_template(
        "admin/resync.html",
        org=org,
        section="resync",
        job=r.job_json(job) if job else None,
        status=actions.scim_status(session, org),
    )


@bp.post(SCIM + "/resync")
@security.login_required
def resync_start() -> ResponseReturnValue:
    org = security.current_org()
    upload = request.files.get("export")
    data = upload.read() if upload and upload.filename else None
    dry_run = request.form.get("dry_run") == "on" or data is not None
    try:
        job = actions.start_resync(
            database.session(),
            org,
            dry_run=dry_run,
            export=data,
            filename=upload.filename if data is not None and upload else None,
            requested_by=str(g.admin.id),
        )
    except actions.ActionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.resync"))
    return redirect(url_for("admin.resync", job=job.id))


@bp.post(SCIM + "/resync/<int:job_id>/apply")
@security.login_required
def resync_apply(job_id: int) -> ResponseReturnValue:
    """The confirmation: apply the differences a finished dry run with an export reported."""
    org = security.current_org()
    session = database.session()
    dry = actions.resync_job(session, org, job_id)
    if dry is None or dry.state != "done" or not (dry.payload or {}).get("export_id"):
        abort(404)
    try:
        job = actions.start_resync(
            session,
            org,
            dry_run=False,
            export_id=uuid.UUID(dry.payload["export_id"]),
            requested_by=str(g.admin.id),
        )
    except actions.ActionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.resync", job=job_id))
    return redirect(url_for("admin.resync", job=job.id))


@bp.post(SCIM + "/resync/cancel")
@security.login_required
def resync_cancel() -> ResponseReturnValue:
    try:
        job = actions.cancel_resync(database.session(), security.current_org())
        flash(f"Re-sync {job.id} is cancelled.")
    except actions.ActionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.resync"))


# --- JSON endpoints (session + X-CSRFToken) ------------------------------------------------


@bp.get("/api/scim")
@security.login_required
def api_scim() -> ResponseReturnValue:
    return jsonify(actions.scim_status(database.session(), security.current_org()))


@bp.get("/api/resync")
@bp.get("/api/resync/<int:job_id>")
@security.login_required
def api_resync(job_id: int | None = None) -> ResponseReturnValue:
    job = actions.resync_job(database.session(), security.current_org(), job_id)
    if job is None:
        abort(404, "no such re-sync")
    return jsonify(r.job_json(job))


@bp.post("/api/resync")
@security.login_required
def api_resync_start() -> ResponseReturnValue:
    body = request.get_json(silent=True) or {}
    export_id = body.get("export_id")
    try:
        job = actions.start_resync(
            database.session(),
            security.current_org(),
            dry_run=bool(body.get("dry_run", False)),
            export_id=uuid.UUID(export_id) if export_id else None,
            requested_by=str(g.admin.id),
        )
    except (actions.ActionError, ValueError) as exc:
        return jsonify(error="refused", detail=str(exc)), 409
    return jsonify(r.job_json(job)), 202


@bp.post("/api/resync/<int:job_id>/cancel")
@security.login_required
def api_resync_cancel(job_id: int) -> ResponseReturnValue:
    try:
        job = actions.cancel_resync(database.session(), security.current_org(), job_id)
    except actions.ActionError as exc:
        return jsonify(error="refused", detail=str(exc)), 409
    return jsonify(r.job_json(job))
