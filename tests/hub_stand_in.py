"""A test stand-in for the Hugging Face Hub.

The test machine has no internet, so tests that exercise ``push_to_hub`` and loading by repo id
talk to this small local server instead of https://huggingface.co. It speaks just enough of the
Hub's HTTP API for the real ``huggingface_hub`` client (and so transformers) to push and pull:

    POST /api/repos/create                               create_repo
    GET  /api/whoami-v2                                  whoami
    POST /api/validate-yaml                              README.md metadata check before a commit
    GET  /api/{type}s/{repo_id}[/revision/{rev}]         repo_info / model_info
    POST /api/{type}s/{repo_id}/preupload/{rev}          always answers uploadMode "regular"
    POST /api/{type}s/{repo_id}/commit/{rev}             NDJSON: header, file (base64), deletedFile/Folder
    GET  /api/{type}s/{repo_id}/tree/{rev}[/{path}]      list_repo_tree / list_repo_files
    POST /api/{type}s/{repo_id}/paths-info/{rev}         get_paths_info
    HEAD, GET /[{type}s/]{repo_id}/resolve/{rev}/{path}  hf_hub_download (X-Repo-Commit, ETag, Content-Length)

Every file is a "regular" git blob sent inline in the commit, so neither LFS nor Xet storage is
needed (files above the Hub's 10 MB inline limit are still accepted here). Revisions are branch
names (only ``main`` exists) or commit ids. Reads are anonymous; writes need ``Bearer <token>``.

The client reads ``HF_ENDPOINT`` when ``huggingface_hub`` is imported, so run code under test in a
subprocess with ``env=hub.env(hf_home)``::

    with HubStandIn() as hub:
        subprocess.run([sys.executable, "-c", code], env=hub.env(tmp_path / "hf_home"), check=True)
        hub.files("user/tiny")  # {path: bytes} at main
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Offline switches and cache locations that would win over HF_HOME / HF_ENDPOINT in a subprocess.
_OVERRIDDEN_ENV = {
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE", "HF_MODULES_CACHE", "HF_XET_CACHE", "HF_ASSETS_CACHE", "HF_TOKEN_PATH",
}
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_OPS = r"(?:/(?P<op>revision|preupload|commit|tree|paths-info)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?"
_API = re.compile(r"^/api/(?P<type>models|datasets|spaces)/" + _REPO + _OPS + "$")
_RESOLVE = re.compile(r"^/(?:(?P<type>datasets|spaces)/)?" + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob: what the Hub (and the client's change detection) call a file's oid."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(message)
        self.status, self.code = status, code


class _Repo:
    """Commits as {commit_id: {path: blob_oid}}; one branch, ``main``."""

    def __init__(self, repo_type: str, repo_id: str):
        self.type, self.id = repo_type, repo_id
        self.created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.commits: dict[str, dict[str, str]] = {}
        self.head = ""
        self.head = self._new_commit({}, "initial commit")

    def _new_commit(self, files: dict[str, str], summary: str) -> str:
        seed = json.dumps([self.type, self.id, self.head, summary, sorted(files.items()), len(self.commits)])
        oid = hashlib.sha1(seed.encode()).hexdigest()
        self.commits[oid] = files
        return oid

    def resolve(self, rev: str) -> str:
        if rev == "main":
            return self.head
        if rev in self.commits:
            return rev
        raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects; every answer has a Content-Length
    hub: "HubStandIn"  # set on a per-server subclass

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------------
    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict | None = None, content_type="application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.hub.requests.append(f"{self.command} {url.path}")
        body = self._body() if self.command in ("POST", "PUT") else b""
        try:
            with self.hub._lock:
                self._route(url.path, parse_qs(url.query), body)
        except Exception as e:  # a _HubError is the Hub's own answer; anything else is a stand-in bug => 500
            status, code = (e.status, e.code) if isinstance(e, _HubError) else (500, None)
            message = str(e) if isinstance(e, _HubError) else f"stand-in error: {e!r}"
            headers = {"X-Error-Message": message} | ({"X-Error-Code": code} if code else {})
            self._send(status, json.dumps({"error": message}).encode(), headers)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def _require_token(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            raise _HubError(401, None, "Invalid credentials in Authorization header")

    def _repo(self, type_plural: str | None, repo_id: str) -> _Repo:
        repo = self.hub._repos.get((_TYPES[type_plural or "models"], unquote(repo_id)))
        if repo is None:
            raise _HubError(404, "RepoNotFound", "Repository not found")
        return repo

    # -- routes -----------------------------------------------------------------------------------
    def _route(self, path: str, query: dict, body: bytes) -> None:
        hub = self.hub
        if path == "/api/whoami-v2" and self.command == "GET":
            self._require_token()
            token = {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}
            return self._json({"type": "user", "name": hub.user, "fullname": hub.user, "orgs": [], "auth": token})
        if path == "/api/validate-yaml" and self.command == "POST":
            return self._json({"errors": [], "warnings": []})
        if path == "/api/repos/create" and self.command == "POST":
            self._require_token()
            payload = json.loads(body)
            repo_type = payload.get("type") or "model"
            repo_id = f"{payload.get('organization') or hub.user}/{payload['name']}"
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            answer = {"url": f"{hub.endpoint}/{prefix}{repo_id}", "name": repo_id}
            if (repo_type, repo_id) in hub._repos:  # the client reads the url from the 409 too (exist_ok=True)
                return self._json(answer | {"error": "You already created this repo"}, status=409)
            hub._repos[(repo_type, repo_id)] = _Repo(repo_type, repo_id)
            return self._json(answer)

        if m := _RESOLVE.match(path):
            if self.command not in ("GET", "HEAD"):
                raise _HubError(405, None, "Method not allowed")
            repo = self._repo(m["type"], m["repo"])
            commit = repo.resolve(unquote(m["rev"]))
            oid = repo.commits[commit].get(unquote(m["path"]))
            if oid is None:
                raise _HubError(404, "EntryNotFound", "Entry not found")
            data = hub._read_blob(oid)
            headers = {"X-Repo-Commit": commit, "ETag": f'"{oid}"'}  # what hf_hub_download needs (+ Content-Length)
            return self._send(200, data, headers, "application/octet-stream")

        m = _API.match(path)
        if m is None:
            raise _HubError(404, None, f"Stand-in Hub does not implement {self.command} {path}")
        repo = self._repo(m["type"], m["repo"])
        op, rev = m["op"], unquote(m["rev"] or "main")
        if op in (None, "revision") and self.command == "GET":
            return self._json(self._repo_info(repo, repo.resolve(rev), "blobs" in query))
        if op == "preupload" and self.command == "POST":
            self._require_token()
            files = repo.commits[repo.resolve(rev)]
            return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                          "oid": files.get(f["path"])} for f in json.loads(body)["files"]]})
        if op == "commit" and self.command == "POST":
            self._require_token()
            return self._json(self._commit(repo, rev, query, body))
        if op == "tree" and self.command == "GET":
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            folder = unquote(m["path"] or "").strip("/")  # the client sends it %2F-quoted
            return self._json(self._tree(repo.commits[repo.resolve(rev)], folder, recursive))
        if op == "paths-info" and self.command == "POST":
            files = repo.commits[repo.resolve(rev)]
            wanted = {p.strip("/") for p in parse_qs(body.decode()).get("paths", [])}  # form-encoded body
            return self._json([e for e in self._tree(files, "", recursive=True) if e["path"] in wanted])
        raise _HubError(404, None, f"Stand-in Hub does not implement {self.command} {path}")

    def _repo_info(self, repo: _Repo, commit: str, with_blobs: bool) -> dict:
        files = repo.commits[commit]
        siblings = [{"rfilename": path} | ({"size": self.hub._blob_size(oid), "blobId": oid} if with_blobs else {})
                    for path, oid in sorted(files.items())]
        return {"_id": repo.id, "id": repo.id, "modelId": repo.id, "author": repo.id.split("/")[0], "sha": commit,
                "private": False, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "createdAt": repo.created, "lastModified": repo.created, "siblings": siblings}

    def _commit(self, repo: _Repo, rev: str, query: dict, body: bytes) -> dict:
        if query.get("create_pr", ["0"])[0] not in ("0", "false"):
            raise _HubError(400, None, "The Hub stand-in does not support pull requests (create_pr)")
        head = repo.resolve(rev)
        if head != repo.head:
            raise _HubError(400, None, "Can only commit to the head of main")
        files, summary = dict(repo.commits[head]), "commit"
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary") or summary
                if value.get("parentCommit") not in (None, head):
                    raise _HubError(412, None, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                content = value["content"]
                data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                files[value["path"]] = self.hub._write_blob(data)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise _HubError(404, "EntryNotFound", "A file with this name doesn't exist")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: o for p, o in files.items() if not p.startswith(prefix)}
            else:
                raise _HubError(400, None, f"The Hub stand-in only takes regular files, not {key!r}")
        repo.head = repo._new_commit(files, summary)
        prefix = "" if repo.type == "model" else f"{repo.type}s/"
        url = f"{self.hub.endpoint}/{prefix}{repo.id}/commit/{repo.head}"
        return {"success": True, "commitOid": repo.head, "commitUrl": url}

    def _tree(self, files: dict[str, str], folder: str, recursive: bool) -> list[dict]:
        """Files (and the folders that hold them) under ``folder``, as the Hub's tree endpoint lists them."""
        prefix = f"{folder}/" if folder else ""
        under = {p: o for p, o in files.items() if p.startswith(prefix)}
        if folder and not under:
            raise _HubError(404, "EntryNotFound", f"{folder} does not exist")
        entries: dict[str, dict] = {}
        for path, oid in sorted(under.items()):
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # the folders on the way to this file
                sub = prefix + "/".join(parts[:depth])
                tree_oid = hashlib.sha1(sub.encode()).hexdigest()  # any stable id will do
                entries.setdefault(sub, {"type": "directory", "path": sub, "oid": tree_oid, "size": 0})
                if not recursive:
                    break
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "path": path, "oid": oid, "size": self.hub._blob_size(oid)}
        return list(entries.values())


class HubStandIn:
    """Runs the stand-in Hub on ``127.0.0.1:<ephemeral port>`` in a daemon thread; blobs live in a temp dir.

    ``endpoint`` is the value for ``HF_ENDPOINT``; ``env(hf_home)`` is a full environment for a subprocess.
    """

    def __init__(self, token: str = "hf_test", user: str = "user"):
        self.token, self.user = token, user
        self.requests: list[str] = []  # "METHOD /path" of every request, for debugging and assertions
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lock = threading.RLock()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._server: ThreadingHTTPServer | None = None
        self.endpoint = ""

    def start(self) -> "HubStandIn":
        self._tmp = tempfile.TemporaryDirectory(prefix="hub_stand_in_")
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="hub-stand-in", daemon=True)
        serve.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "HubStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self, hf_home: str | os.PathLike, base: dict | None = None) -> dict[str, str]:
        """Environment for a subprocess that should talk to this Hub, with its own cache at ``hf_home``."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _OVERRIDDEN_ENV}
        env.update({
            "HF_ENDPOINT": self.endpoint,
            "HF_TOKEN": self.token,
            "HF_HOME": str(hf_home),
            # Every file is "regular" anyway; this keeps upload_folder on the plain single-commit path.
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_ETAG_TIMEOUT": "30",
            "HF_HUB_DOWNLOAD_TIMEOUT": "30",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        })
        return env

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files of a repo at a revision, straight from the store (for assertions)."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return {path: self._read_blob(oid) for path, oid in repo.commits[repo.resolve(revision)].items()}

    # -- blob store (content-addressed by git oid) ------------------------------------------------
    def _write_blob(self, data: bytes) -> str:
        oid = git_blob_oid(data)
        (Path(self._tmp.name) / oid).write_bytes(data)
        return oid

    def _read_blob(self, oid: str) -> bytes:
        return (Path(self._tmp.name) / oid).read_bytes()

    def _blob_size(self, oid: str) -> int:
        return (Path(self._tmp.name) / oid).stat().st_size
