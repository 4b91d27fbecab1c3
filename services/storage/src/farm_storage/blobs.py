"""Artifacts' bytes in an S3 bucket, through the blocking minio client run in a bounded pool.

With tracing on, each S3 request is a span (OpenTelemetry's urllib3 instrumentation,
under the call that asked for it: the pool's threads run in the caller's context).
"""

import asyncio
import contextvars
import functools
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import MAX_PART_SIZE
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay

from farm_core.backoff import DoublingWait
from farm_core.errors import Unavailable
from farm_core.runtime import StartFailure
from farm_core.tracing import instrument
from farm_storage.attempts import UNCHECKED, AttemptFence
from farm_storage.s3_outage import S3OutageLog
from farm_storage.settings import StorageSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 3.0
FIRST_RETRY_DELAY_SECONDS = 0.2
MAX_RETRY_DELAY_SECONDS = 2.0
_BUCKET_TAKEN = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_MISSING_OBJECT = frozenset({"NoSuchKey", "NoSuchObject"})
_S3_BUSY = frozenset({"InternalError", "ServiceUnavailable", "SlowDown"})
# S3's answers to a key pair it does not take (unknown key, wrong secret, no rights).
_KEYS_REFUSED = frozenset(
    {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken"}
)
_KEYS_HINT = (
    "check S3_ACCESS_KEY and S3_SECRET_KEY (FARM_STORAGE_S3_ACCESS_KEY, FARM_STORAGE_S3_SECRET_KEY)"
)


class BlobMissing(LookupError):
    """The object is not in the bucket."""


class S3NotReady(Unavailable, StartFailure):
    """S3 did not make (or show) the bucket within the start's time; the message says why."""


def _worth_waiting_for(error: BaseException) -> bool:
    """Whether a start tries again after `error`: S3 unreachable or not ready, not a refusal."""
    if isinstance(error, S3Error):
        return error.code not in _KEYS_REFUSED
    return isinstance(error, Unavailable)


def start_hint(error: BaseException) -> str:
    """What to check after S3, which took the keys, failed a start with `error`."""
    if isinstance(error, S3Error):
        return "check S3_BUCKET and S3_REGION"
    return "check S3_ENDPOINT, and that S3 runs there"


def object_key(tenant: str, task_id: str, name: str, fence: AttemptFence = UNCHECKED) -> str:
    """The S3 key of an artifact's bytes: one per attempt of its task, when the upload names one.

    So an upload that its attempt's check refuses has written over no other attempt's bytes.
    """
    if not fence.checked:
        return f"{tenant}/{task_id}/{name}"
    return f"{tenant}/{task_id}/{fence.work_sequence}.{fence.attempt}/{name}"


def s3_connections(settings: StorageSettings) -> urllib3.PoolManager:
    """HTTP connections to S3 that fail fast: bounded timeouts, one retry of a refused connect."""
    # urllib3 logs that retry as a WARNING, at every start beside a starting S3; what
    # follows is logged where it is handled (waiting for S3, or the call's Unavailable).
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=settings.s3_timeout_seconds),
        # Only a connection that never reached the server is retried: a request the
        # server may have processed is the caller's to retry.
        retries=urllib3.Retry(total=1, read=0, redirect=0, status=0),
        maxsize=settings.s3_threads,
    )


def s3_client(settings: StorageSettings, connections: urllib3.PoolManager) -> Minio:
    """A minio client for `settings.s3_endpoint` (http:// or https://) over `connections`."""
    secure = settings.s3_endpoint.startswith("https://")
    address = settings.s3_endpoint.split("://", 1)[-1].rstrip("/")
    return Minio(
        address,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=secure,
        region=settings.s3_region or None,
        http_client=connections,
    )


class BlobStore:
    """One bucket's objects; every call runs on a pool of `s3_threads` threads."""

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
        self._bucket = settings.s3_bucket
        self._connections = s3_connections(settings)
        self._client = s3_client(settings, self._connections)
        self._executor = ThreadPoolExecutor(settings.s3_threads, thread_name_prefix="s3")
        self._outage_log = S3OutageLog(self._bucket, settings.s3_failure_log_seconds)

    async def start(self) -> None:
        """Makes the bucket if missing, retrying while S3 comes up; S3NotReady if it never does.

        A refused key pair is not retried: S3 answered, and more time will not change the
        keys (an unreachable or starting S3 gets the whole ready timeout).
        """
        instrument(URLLib3Instrumentor())
        retrying = AsyncRetrying(
            stop=stop_before_delay(self._settings.s3_ready_timeout_seconds),
            wait=DoublingWait(FIRST_RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS),
            # A starting S3 server may also answer with S3 errors until it is ready.
            retry=retry_if_exception(_worth_waiting_for),
            before_sleep=self._waiting_for_s3,
            reraise=True,
        )
        try:
            await retrying(self._call, self._ensure_bucket)
        except S3Error as error:
            if error.code in _KEYS_REFUSED:
                raise S3NotReady(
                    f"S3 at {self._settings.s3_endpoint} refused storage's key pair "
                    f"(S3_ACCESS_KEY={self._settings.s3_access_key!r}) making bucket "
                    f"{self._bucket!r}: {error.code}: {error.message}; {_KEYS_HINT}"
                ) from error
            raise self._not_ready(error) from error
        except Unavailable as error:
            raise self._not_ready(error) from error

    def _not_ready(self, error: Exception) -> S3NotReady:
        return S3NotReady(
            f"S3 at {self._settings.s3_endpoint} did not make bucket "
            f"{self._bucket!r} within {self._settings.s3_ready_timeout_seconds:.0f}"
            f" s (FARM_STORAGE_S3_READY_TIMEOUT_SECONDS): {error}; {start_hint(error)}"
        )

    def _waiting_for_s3(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome is not None else None
        log.info("waiting for S3 at %s: %s", self._settings.s3_endpoint, error)

    async def close(self) -> None:
        """Waits for running calls, then releases the threads and connections."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._connections.clear()

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Writes `data` at `key`, replacing what was there."""
        await self._request("PutObject", self._put, key, data, content_type)

    async def get(self, key: str) -> bytes:
        """The bytes at `key`; BlobMissing if there are none."""
        return await self._request("GetObject", self._get, key)

    async def remove(self, key: str) -> None:
        """Deletes the object at `key`; nothing happens if there is none."""
        await self._request("RemoveObject", self._client.remove_object, self._bucket, key)

    async def remove_under(self, prefix: str) -> int:
        """Deletes every object whose key starts with `prefix`; how many there were."""
        return await self._request("RemoveObjects", self._remove_under, prefix)

    def _remove_under(self, prefix: str) -> int:
        keys = [
            DeleteObject(found.object_name)
            for found in self._client.list_objects(self._bucket, prefix=prefix, recursive=True)
            if found.object_name
        ]
        if keys:
            # One DeleteObjects request per 1000 keys; the client yields only the failures.
            failures = list(self._client.remove_objects(self._bucket, keys))
            if failures:
                raise Unavailable(
                    f"S3 kept {len(failures)} of {len(keys)} objects under {prefix!r}: "
                    f"{failures[0].code}: {failures[0].message}"
                )
        return len(keys)

    async def _request(self, operation: str, function: Callable[..., T], *args: object) -> T:
        """`_call`, its failure (or S3 answering after failures) logged by the outage log."""
        try:
            result = await self._call(function, *args)
        except (Unavailable, S3Error) as error:
            self._outage_log.failed(operation, error)
            raise
        except BlobMissing:
            self._outage_log.answered()
            raise
        self._outage_log.answered()
        return result

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        """Runs a blocking client call on the pool; S3 being unreachable is Unavailable."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, contextvars.copy_context().run, functools.partial(function, *args)
            )
        except S3Error as error:
            if error.code in _S3_BUSY:
                raise Unavailable(f"S3 failed: {error.code}: {error.message}") from error
            raise
        except (ServerError, InvalidResponseError, urllib3.exceptions.HTTPError, OSError) as error:
            raise Unavailable(f"S3 is unavailable: {error}") from error

    def _ensure_bucket(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket, location=self._settings.s3_region or None)
        except S3Error as error:
            # Another replica made it between our check and our call.
            if error.code not in _BUCKET_TAKEN:
                raise
        log.info("made S3 bucket %r", self._bucket)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        # One PUT, not a multipart upload, so a failure leaves no stray parts behind.
        self._client.put_object(
            self._bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            part_size=MAX_PART_SIZE,
        )

    def _get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(self._bucket, key)
        except S3Error as error:
            if error.code in _MISSING_OBJECT:
                raise BlobMissing(key) from error
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()
