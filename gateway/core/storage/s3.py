"""Media in an S3-compatible object store (`s3://` storage URLs), served by presigned links."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gateway.core.storage.base import (
    DEFAULT_CONTENT_TYPE,
    DEFAULT_S3_REGION,
    MediaNotFound,
    StorageError,
    StorageUnavailable,
    _validate_content_type,
    validate_key,
)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage:
    """Media stored as objects in an S3 bucket, under an optional key prefix.

    Credentials and region come from the usual AWS environment variables and config files
    (AWS_REGION, then AWS_DEFAULT_REGION / config, else us-east-1). One client is opened on
    first use and kept until `close()`, so connections are pooled across calls.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Storage({self.bucket!r}, prefix={self.prefix!r}{where})"

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _describe(self) -> str:
        return f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        # The lock stops two first calls racing and leaking a second client.
        async with self._lock:
            if self._client is None:
                session = aioboto3.Session()
                # botocore reads AWS_DEFAULT_REGION and config files but not AWS_REGION,
                # which newer SDKs and most container platforms set.
                region = (
                    os.environ.get("AWS_REGION") or session.region_name or DEFAULT_S3_REGION
                )
                config = Config(
                    # Presigned links must use SigV4: every region and most S3 clones
                    # refuse the older scheme.
                    signature_version="s3v4",
                    # Custom endpoints (MinIO, moto, LAN hosts) rarely have wildcard DNS,
                    # so virtual-host addressing would produce unresolvable names.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    connect_timeout=5,
                    read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                )
                stack = AsyncExitStack()
                try:
                    self._client = await stack.enter_async_context(
                        session.client(
                            "s3", region_name=region, endpoint_url=self.endpoint_url,
                            config=config,
                        )
                    )
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
        return self._client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload `data` as the object for `key` with `content_type`; returns when stored."""
        object_key = self._object_key(key)
        _validate_content_type(content_type)
        client = await self._get_client()
        try:
            await client.put_object(
                Bucket=self.bucket, Key=object_key, Body=data, ContentType=content_type
            )
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """A HEAD of the object: True when it is there."""
        client = await self._get_client()
        try:
            await client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if isinstance(self._translate(exc, key), MediaNotFound):
                return False
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc
        return True

    async def get(self, key: str) -> tuple[bytes, str]:
        """Download the object for `key`; return its bytes and content type.

        Raises MediaNotFound when there is no such object.
        """
        object_key = self._object_key(key)
        client = await self._get_client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=object_key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc
        return data, str(response.get("ContentType") or DEFAULT_CONTENT_TYPE)

    async def delete(self, key: str) -> None:
        """Delete the object for `key` (S3 answers success for a missing one)."""
        client = await self._get_client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder `prefix`, a listed page (<= 1000) at a time."""
        folder = self._object_key(prefix.rstrip("/")) + "/"
        client = await self._get_client()
        removed = 0
        try:
            paginator = client.get_paginator("list_objects_v2")
            async for listed in paginator.paginate(Bucket=self.bucket, Prefix=folder):
                objects = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
                if objects:
                    await client.delete_objects(Bucket=self.bucket,
                                                Delete={"Objects": objects, "Quiet": True})
                    removed += len(objects)
        except ClientError as exc:
            raise self._translate(exc, prefix) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc
        return removed

    async def signed_url(self, key: str, *, expires_in_s: int, base_url: str) -> str:
        """Return a presigned GET URL for `key`, valid `expires_in_s` seconds.

        `base_url` is ignored: clients download straight from the store, so `endpoint_url`
        must be reachable by them. Signing is local; no request is made and existence is
        not checked.
        """
        object_key = self._object_key(key)
        if expires_in_s <= 0:
            raise ValueError(f"expires_in_s must be positive, got {expires_in_s}")
        client = await self._get_client()
        url: str = await client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": object_key},
            ExpiresIn=int(expires_in_s),
        )
        return url

    def public_url(self, key: str, *, base_url: str) -> str | None:
        """`{base_url}/{object key}` (the key under the storage prefix, quoted): the link to
        `key` through a CDN whose origin is this bucket. Unsigned and permanent; nothing is
        contacted and existence is not checked."""
        return f"{base_url.rstrip('/')}/{quote(self._object_key(key), safe='/')}"

    async def check(self) -> None:
        """Check the bucket exists and is accessible; raise StorageUnavailable saying why not."""
        client = await self._get_client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                reason = "bucket does not exist"
            elif code in ("403", "AccessDenied", "Forbidden"):
                reason = "access denied (check the AWS credentials and bucket policy)"
            else:
                reason = str(exc)
            raise StorageUnavailable(f"{self._describe()} is not usable: {reason}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc

    async def close(self) -> None:
        """Close the pooled client, if one was opened. A later call opens a new one."""
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                await stack.aclose()

    def _translate(self, exc: ClientError, key: str) -> StorageError:
        code = _error_code(exc)
        if code in ("NoSuchKey", "404", "NotFound"):
            return MediaNotFound(key)
        if code == "NoSuchBucket":
            return StorageUnavailable(f"{self._describe()} is not usable: bucket does not exist")
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageUnavailable(f"{self._describe()} refused access: {exc}")
        return StorageError(f"{self._describe()} failed for {key!r}: {exc}")
