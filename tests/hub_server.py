"""A small Hugging Face Hub for tests: the real `huggingface_hub` client talks to it over HTTP on 127.0.0.1.

It speaks the parts of the Hub protocol that `create_repo`, `upload_folder`/`create_commit`, `Trainer.push_to_hub`,
`snapshot_download`, `hf_hub_download` and `from_pretrained(..., trust_remote_code=True)` use:

    POST /api/repos/create                               create a model repo (first commit: .gitattributes)
    POST /api/validate-yaml                              check a README's YAML header (model-index included)
    POST /api/models/{repo}/preupload/{rev}              "regular" (inline) or "lfs" per file
    POST /{repo}.git/info/lfs/objects/batch              LFS "basic" transfer: where to PUT each object
    PUT  /_lfs/{oid}                                     the object itself (like a presigned URL: no auth)
    POST /api/models/{repo}/commit/{rev}                 the NDJSON commit (base64 files, lfsFile pointers, deletes)
    GET  /api/models/{repo}[/revision/{rev}]             model_info / repo_info
    GET  /api/models/{repo}/tree/{rev}[/{path}]          list_repo_tree
    GET|HEAD /{repo}/resolve/{rev}/{path}                file download, with X-Repo-Commit, ETag, X-Linked-* headers

Xet is not spoken: its token endpoints answer 501, so clients must run with `HF_HUB_DISABLE_XET=1` (with hf_xet
installed the client uploads LFS files through Xet without asking the server first). Writes need
`Authorization: Bearer <token>` with a known token; private repos are invisible without one, as on the Hub.

Run by hand with `python tests/hub_server.py --port 8765 --token hf_test` and point `HF_ENDPOINT` at it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

# Like the .gitattributes the Hub writes into every new model repo: these go through LFS whatever their size.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".pkl", ".ckpt", ".h5", ".onnx", ".msgpack", ".npz", ".zip")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)


class HubError(Exception):
    """An error the Hub reports with `X-Error-Code`, which the client turns into its typed exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class Entry:
    """One file in one commit; its bytes live in the blob store under `sha256`."""

    size: int
    sha256: str
    git_oid: str  # for LFS files, the oid of the pointer file, as git stores it
    lfs: bool

    def tree_json(self, path: str) -> dict:
        row = {"type": "file", "oid": self.git_oid, "size": self.size, "path": path}
        if self.lfs:
            pointer_size = len(lfs_pointer(self.sha256, self.size))
            row["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": pointer_size}
        return row

    def sibling_json(self, path: str, with_blobs: bool) -> dict:
        """A `siblings` row of model_info; `with_blobs` is `files_metadata=True` (note `sha256`, not `oid`)."""
        row: dict = {"rfilename": path}
        if with_blobs:
            row.update(size=self.size, blobId=self.git_oid)
            if self.lfs:
                pointer_size = len(lfs_pointer(self.sha256, self.size))
                row["lfs"] = {"sha256": self.sha256, "size": self.size, "pointerSize": pointer_size}
        return row


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, Entry]] = field(default_factory=dict)  # commit oid -> {path: entry}
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit oid

    def resolve(self, revision: str) -> tuple[str, dict[str, Entry]]:
        commit = self.refs.get(revision, revision)
        if commit not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit, self.commits[commit]


class HubStore:
    """Repos, commits and content-addressed blobs in a folder.

    No lock: every handler is `async def`, so they run one at a time on the server's event loop, and none awaits
    between reading the store and changing it. Any known token may write to any namespace.
    """

    def __init__(self, root: Path, tokens: dict[str, str]):
        self.blobs = Path(root) / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tokens = tokens  # token -> user name
        self.repos: dict[str, Repo] = {}
        self.expected_uploads: set[str] = set()  # LFS oids announced by a batch call, not yet PUT

    def put_blob(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        self.blob_path(sha256).write_bytes(data)
        return sha256

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256

    def user(self, request: Request, required: bool) -> str | None:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else None
        if token is not None and token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        if required and token is None:
            raise HubError(401, "Authorization header is required to write to the Hub (no token was sent)")
        return self.tokens.get(token) if token else None

    def repo(self, repo_id: str, request: Request) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and self.user(request, required=False) is None):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def commit(self, repo: Repo, branch: str, files: dict[str, Entry], message: str) -> str:
        parent = repo.refs.get(branch, "")
        oid = hashlib.sha1(f"{parent}\n{message}\n{time.time_ns()}\n{sorted(files)}".encode()).hexdigest()
        repo.commits[oid] = files
        repo.refs[branch] = oid
        return oid


def create_app(store: HubStore) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(HubError)
    async def hub_error(request: Request, error: HubError) -> JSONResponse:
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        if error.commit:
            headers["X-Repo-Commit"] = error.commit
        return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        user = store.user(request, required=True)
        body = await request.json()
        if body.get("type", "model") != "model":
            raise HubError(400, "this test Hub serves model repos only")
        repo_id = f"{body.get('organization') or user}/{body['name']}"  # a bare name goes to the token's user
        url = f"{base_url(request)}/{repo_id}"
        if repo_id in store.repos:
            raise HubError(409, "You already created this model repo")
        repo = store.repos[repo_id] = Repo(private=body.get("visibility") == "private" or bool(body.get("private")))
        data = GITATTRIBUTES.encode()
        attributes = Entry(len(data), store.put_blob(data), git_blob_oid(data), lfs=False)
        store.commit(repo, "main", {".gitattributes": attributes}, "initial commit")
        return {"url": url, "name": repo_id, "id": repo_id}

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        content = (await request.json()).get("content", "")
        errors = card_metadata_errors(content)
        if errors:
            return JSONResponse({"errors": [{"message": e} for e in errors]}, status_code=400)
        return {"errors": [], "warnings": []}

    @app.post("/api/models/{namespace}/{name}/preupload/{revision}")
    async def preupload(namespace: str, name: str, revision: str, request: Request):
        store.user(request, required=True)
        _, files = store.repo(f"{namespace}/{name}", request).resolve(revision)
        answer = []
        for item in (await request.json())["files"]:
            lfs = item["path"].endswith(LFS_SUFFIXES) or item["size"] >= LFS_MIN_SIZE
            existing = files.get(item["path"])
            oid = (existing.sha256 if existing.lfs else existing.git_oid) if existing else None
            answer.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                           "oid": oid})
        return {"files": answer, "commitOid": None}

    @app.post("/{namespace}/{name}.git/info/lfs/objects/batch")
    async def lfs_batch(namespace: str, name: str, request: Request):
        store.user(request, required=True)
        store.repo(f"{namespace}/{name}", request)
        objects = []
        for obj in (await request.json())["objects"]:
            row = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not store.blob_path(obj["oid"]).exists():
                store.expected_uploads.add(obj["oid"])
                row["actions"] = {"upload": {"href": f"{base_url(request)}/_lfs/{obj['oid']}", "expires_in": 3600}}
            objects.append(row)
        return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                            media_type="application/vnd.git-lfs+json")

    @app.put("/_lfs/{oid}")
    async def lfs_put(oid: str, request: Request):
        if oid not in store.expected_uploads:
            raise HubError(403, "no upload was announced for this object")
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, "object content does not match its oid")
        store.put_blob(data)
        store.expected_uploads.discard(oid)
        return Response(status_code=200, headers={"ETag": f'"{oid}"'})

    @app.api_route("/api/models/{namespace}/{name}/xet-write-token/{revision}", methods=["GET", "POST"])
    @app.api_route("/api/models/{namespace}/{name}/xet-read-token/{revision}", methods=["GET", "POST"])
    async def no_xet(namespace: str, name: str, revision: str):
        raise HubError(501, "this test Hub does not speak Xet; run the client with HF_HUB_DISABLE_XET=1")

    @app.post("/api/models/{namespace}/{name}/commit/{revision}")
    async def commit(namespace: str, name: str, revision: str, request: Request):
        store.user(request, required=True)
        repo_id = f"{namespace}/{name}"
        if request.query_params.get("create_pr"):
            raise HubError(501, "this test Hub does not open pull requests")
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line.strip()]
        repo = store.repo(repo_id, request)
        head, files = repo.resolve(revision)
        if revision not in repo.refs:
            raise HubError(400, f"can only commit to a branch, not {revision}")
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        if header.get("parentCommit") not in (None, head):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = apply_operations(store, dict(files), lines[1:])
        oid = store.commit(repo, revision, files, header.get("summary", ""))
        return {"success": True, "commitOid": oid, "commitUrl": f"{base_url(request)}/{repo_id}/commit/{oid}",
                "hookOutput": ""}

    @app.get("/api/models/{namespace}/{name}")
    @app.get("/api/models/{namespace}/{name}/revision/{revision}")
    async def model_info(namespace: str, name: str, request: Request, revision: str = "main"):
        repo_id = f"{namespace}/{name}"
        repo = store.repo(repo_id, request)
        oid, files = repo.resolve(revision)
        blobs = request.query_params.get("blobs") in ("1", "true", "True")
        siblings = [files[path].sibling_json(path, blobs) for path in sorted(files)]
        card = readme_metadata(store, files)
        return {"id": repo_id, "modelId": repo_id, "author": namespace, "sha": oid, "private": repo.private,
                "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": card.get("tags", []),
                "library_name": card.get("library_name"), "pipeline_tag": card.get("pipeline_tag"),
                "cardData": card or None, "siblings": siblings, "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z"}

    @app.get("/api/models/{namespace}/{name}/tree/{revision}")
    @app.get("/api/models/{namespace}/{name}/tree/{revision}/{path:path}")
    async def tree(namespace: str, name: str, revision: str, request: Request, path: str = ""):
        _, files = store.repo(f"{namespace}/{name}", request).resolve(revision)
        recursive = request.query_params.get("recursive") in ("1", "true", "True")
        rows = tree_rows(files, path.strip("/"), recursive)
        if path and not rows and path not in files:
            raise HubError(404, f"{path} does not exist", "EntryNotFound")
        return rows

    @app.api_route("/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    async def resolve(namespace: str, name: str, revision: str, path: str, request: Request):
        oid, files = store.repo(f"{namespace}/{name}", request).resolve(revision)
        entry = files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit=oid)
        etag = f'"{entry.sha256 if entry.lfs else entry.git_oid}"'
        headers = {"X-Repo-Commit": oid, "ETag": etag}
        if entry.lfs:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(entry.size)})
        return FileResponse(store.blob_path(entry.sha256), headers=headers, media_type="application/octet-stream")

    return app


def apply_operations(store: HubStore, files: dict[str, Entry], operations: list[dict]) -> dict[str, Entry]:
    for operation in operations:
        key, value = operation["key"], operation["value"]
        path = value["path"]
        if key == "file":
            data = base64.b64decode(value["content"])
            files[path] = Entry(len(data), store.put_blob(data), git_blob_oid(data), lfs=False)
        elif key == "lfsFile":
            blob = store.blob_path(value["oid"])
            if not blob.exists():
                raise HubError(400, f"LFS object {value['oid']} for {path} was never uploaded")
            size = blob.stat().st_size
            files[path] = Entry(size, value["oid"], git_blob_oid(lfs_pointer(value["oid"], size)), lfs=True)
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            files = {p: e for p, e in files.items() if not p.startswith(prefix)}
        else:
            raise HubError(400, f"unknown commit operation {key!r}")
    return files


def parent_folders(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def folder_json(path: str) -> dict:
    return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}


def tree_rows(files: dict[str, Entry], folder: str, recursive: bool) -> list[dict]:
    prefix = f"{folder}/" if folder else ""
    inside = [p for p in sorted(files) if p.startswith(prefix)]
    folders = sorted({f for p in inside for f in parent_folders(p) if f.startswith(prefix) and f != folder})
    if not recursive:
        inside = [p for p in inside if "/" not in p[len(prefix):]]
        folders = [f for f in folders if "/" not in f[len(prefix):]]
    return [folder_json(f) for f in folders] + [files[p].tree_json(p) for p in inside]


def split_front_matter(content: str) -> str | None:
    if not content.startswith("---"):
        return None
    end = content.find("\n---", 3)
    return content[3:end] if end != -1 else None


def readme_metadata(store: HubStore, files: dict[str, Entry]) -> dict:
    entry = files.get("README.md")
    if entry is None:
        return {}
    header = split_front_matter(store.blob_path(entry.sha256).read_text(encoding="utf-8"))
    metadata = yaml.safe_load(header) if header else None
    return metadata if isinstance(metadata, dict) else {}


def card_metadata_errors(content: str) -> list[str]:
    """The checks of the Hub's metadata validator that matter for model cards, as messages (empty when valid)."""
    header = split_front_matter(content)
    if header is None:
        return []
    try:
        metadata = yaml.safe_load(header) or {}
    except yaml.YAMLError as error:
        return [f"YAML header does not parse: {error}"]
    if not isinstance(metadata, dict):
        return ["YAML header must be a mapping"]
    errors = [f'"{key}" must be a string' for key in ("license", "library_name", "pipeline_tag")
              if key in metadata and not isinstance(metadata[key], str)]
    errors += [f'"{key}" must be a list of strings' for key in ("tags", "datasets", "metrics")
               if key in metadata and not _is_string_list(metadata[key])]
    for entry in metadata.get("model-index") or []:
        for result in entry.get("results", []):
            if not result.get("task", {}).get("type") or not result.get("dataset", {}).get("type"):
                errors.append('"model-index" results need task.type and dataset.type')
            if any("type" not in m or "value" not in m for m in result.get("metrics", [])):
                errors.append('"model-index" metrics need type and value')
    return errors


def _is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class HubServer:
    """The test Hub on a free port of 127.0.0.1, served from a thread.

        with HubServer(tokens={"hf_test": "tester"}) as hub:
            HfApi(endpoint=hub.url, token="hf_test").create_repo("tester/demo")
    """

    def __init__(self, root: str | Path | None = None, tokens: dict[str, str] | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="test-hub-") if root is None else None
        self.store = HubStore(Path(root or self._tmp.name), tokens or {"hf_test_token": "tester"})
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HubServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free one, so parallel test runs never collide
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(self.store), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test Hub did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="a Hub-compatible server for local tests")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--root", default=None, help="where to keep the blobs (default: a temporary folder)")
    parser.add_argument("--token", default="hf_test_token", help="the write token to accept (user 'tester')")
    args = parser.parse_args()
    store = HubStore(Path(args.root or tempfile.mkdtemp(prefix="test-hub-")), {args.token: "tester"})
    uvicorn.run(create_app(store), host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
