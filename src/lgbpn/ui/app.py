"""The page's web server (Starlette): the page itself and a small JSON API over a `Session`.

Routes: GET / (the page), GET /api/models, POST /api/photos (a file), GET /api/photos/{id}/view.png,
POST /api/weights (a file), POST /api/jobs (photo, model, strength), GET /api/jobs/{id},
GET /api/jobs/{id}/view.png, GET /api/jobs/{id}/result (the download). Every failure is a JSON
`{"error": "..."}` in one line, never a traceback page.
"""

import contextlib
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import LgbpnError, one_line
from ..options import OptionError
from .session import Photo, Session

_NO_CACHE = {"Cache-Control": "no-store"}


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _photo_json(photo: Photo) -> dict:
    return {"id": photo.id, "name": photo.name, "width": photo.width, "height": photo.height, "format": photo.format,
            "depth": photo.depth, "noise": photo.noise}


async def _upload(request: Request) -> tuple[str, bytes]:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise HTTPException(400, "no file in the upload (a form field named 'file')")
    return upload.filename or "", await upload.read()


def create_app(session: Session | None = None) -> Starlette:
    session = session or Session()
    page = (resources.files(__package__) / "page.html").read_text(encoding="utf-8")

    def lookup(table: dict, request: Request):
        item = table.get(request.path_params["id"])
        if item is None:
            raise HTTPException(404, "no such photo or job (the page was restarted?)")
        return item

    async def index(request: Request):
        return HTMLResponse(page)

    async def models(request: Request):
        return JSONResponse(session.models())

    async def add_photo(request: Request):
        name, data = await _upload(request)
        try:
            return JSONResponse(_photo_json(await run_in_threadpool(session.add_photo, name, data)))
        except LgbpnError as exc:
            return _error(str(exc))

    async def photo_view(request: Request):
        return Response(lookup(session.photos, request).view, media_type="image/png")

    async def add_weights(request: Request):
        name, data = await _upload(request)
        try:
            return JSONResponse(await run_in_threadpool(session.add_weights, name, data))
        except LgbpnError as exc:
            return _error(str(exc))

    async def add_job(request: Request):
        try:
            asked = await request.json()
            job = session.submit(asked["photo"], asked.get("model") or session.models()[0]["id"], asked.get("strength", 1.0))
        except OptionError as exc:
            return _error(str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            return _error(f"bad request: unknown or missing {one_line(exc)}")
        return JSONResponse(job.public())

    async def job_status(request: Request):
        return JSONResponse(lookup(session.jobs, request).public(), headers=_NO_CACHE)

    async def job_view(request: Request):
        job = lookup(session.jobs, request)
        if job.view is None:
            raise HTTPException(409, f"job {job.state}: no result yet")
        return Response(job.view, media_type="image/png")

    async def job_result(request: Request):
        job = lookup(session.jobs, request)
        if job.result is None:
            raise HTTPException(409, f"job {job.state}: no result yet")
        return FileResponse(job.result, filename=job.result.name)

    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.detail, exc.status_code)

    async def server_error(request: Request, exc: Exception):
        return _error(f"unexpected {type(exc).__name__} ({one_line(exc)}); please report this", 500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        session.close()

    routes = [
        Route("/", index), Route("/api/models", models), Route("/api/photos", add_photo, methods=["POST"]),
        Route("/api/photos/{id}/view.png", photo_view), Route("/api/weights", add_weights, methods=["POST"]),
        Route("/api/jobs", add_job, methods=["POST"]), Route("/api/jobs/{id}", job_status),
        Route("/api/jobs/{id}/view.png", job_view), Route("/api/jobs/{id}/result", job_result),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error, Exception: server_error})
