"""Which IAM permission each recorded AWS call needs, and whether a policy grants it.

`required_permissions` maps one HTTP request (as `tests.unit.moto_server.CallRecorder` saw it) to
the IAM actions and resource ARNs that AWS authorizes it against, following the services' own
tables:

- S3: "Required permissions for Amazon S3 API operations"
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html,
  each operation's Permissions section), and for an SSE-KMS bucket "kms:GenerateDataKey to upload,
  kms:Decrypt to download" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
- Glue: catalog, database and table ARNs per call
  (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html).
- Athena: the workgroup ARN for query calls
  (https://docs.aws.amazon.com/athena/latest/ug/example-policies-workgroup.html); a query reads
  the source and writes its results in S3 and reads the Glue catalog with the caller's
  permissions (https://docs.aws.amazon.com/athena/latest/ug/s3-permissions.html,
  https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html), so
  StartQueryExecution also needs those.

`allows` evaluates Allow statements the way IAM matches them: actions case-insensitively with `*`
and `?` wildcards, resources case-sensitively with the same wildcards. The role's policy has no
Deny and no NotAction/NotResource; conditions are outside this check.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.unit.moto_server import AwsCall

Permission = tuple[str, str]  # (IAM action, resource ARN)

# Calls any identity may make, which no policy grants (STS GetCallerIdentity).
_UNAUTHORIZED_CALLS = frozenset({"sts:GetCallerIdentity"})


@dataclass(frozen=True)
class Names:
    """The deployed names the ARNs are built from."""

    partition: str
    region: str
    account: str
    data_bucket: str
    data_key_arn: str
    workgroup: str
    database: str
    source_table: str
    results_prefix: str  # the workgroup's result location under the data bucket


def required_permissions(call: AwsCall, names: Names) -> list[Permission]:
    cloudwatch = cloudwatch_operation(call)
    if cloudwatch:
        return [(f"cloudwatch:{cloudwatch}", "*")]
    if call.target:
        return _json_protocol(call, names)
    if "Action=GetCallerIdentity" in call.body.decode(errors="ignore"):
        return []
    return _s3(call, names)


# -- S3 -------------------------------------------------------------------------------------------


def _s3(call: AwsCall, names: Names) -> list[Permission]:
    bucket, _, key = unquote(call.path.lstrip("/")).partition("/")
    bucket_arn = f"arn:{names.partition}:s3:::{bucket}"
    action = _s3_bucket_action(call) if not key else _s3_object_action(call)
    if action == "s3:DeleteObject" and not key:
        needed = [(action, f"{bucket_arn}/{k}") for k in _batch_delete_keys(call.body)]
    else:
        needed = [(action, f"{bucket_arn}/{key}" if key else bucket_arn)]
    if call.copy_source:
        source = unquote(call.copy_source.lstrip("/")).split("?")[0]
        needed.append(("s3:GetObject", f"arn:{names.partition}:s3:::{source}"))
    if bucket == names.data_bucket:
        needed += _sse_kms(needed, names)
    return needed


def _s3_bucket_action(call: AwsCall) -> str:
    if call.method == "POST" and "delete" in call.query:
        return "s3:DeleteObject"
    if call.method in ("GET", "HEAD"):
        for sub_resource, action in (
            ("location", "s3:GetBucketLocation"),
            ("uploads", "s3:ListBucketMultipartUploads"),
            ("versions", "s3:ListBucketVersions"),
        ):
            if sub_resource in call.query:
                return action
        return "s3:ListBucket"  # ListObjects(V2) and HeadBucket
    raise AssertionError(f"no IAM mapping for the bucket call {call.method} {call.path}")


def _s3_object_action(call: AwsCall) -> str:
    if call.method in ("GET", "HEAD"):
        return "s3:ListMultipartUploadParts" if "uploadId" in call.query else "s3:GetObject"
    if call.method in ("PUT", "POST"):
        return "s3:PutObject"  # also each multipart upload step and the copy's target
    if call.method == "DELETE":
        return "s3:AbortMultipartUpload" if "uploadId" in call.query else "s3:DeleteObject"
    raise AssertionError(f"no IAM mapping for the object call {call.method} {call.path}")


def _batch_delete_keys(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    return [element.text or "" for element in root.iter() if element.tag.endswith("Key")]


def _sse_kms(s3_permissions: Iterable[Permission], names: Names) -> list[Permission]:
    """Objects in the data bucket are encrypted with the data key: writing one makes S3 ask KMS
    for a data key, reading one makes it ask KMS to decrypt, both as the caller."""
    kms = {"s3:PutObject": "kms:GenerateDataKey", "s3:GetObject": "kms:Decrypt"}
    return [(kms[action], names.data_key_arn) for action, _ in s3_permissions if action in kms]


# -- CloudWatch ------------------------------------------------------------------------------------

_CLOUDWATCH_SERVICE_ID = "GraniteServiceVersion20100801"


def cloudwatch_operation(call: AwsCall) -> str:
    """The CloudWatch operation of a call, whichever protocol botocore chose (JSON names it in
    X-Amz-Target, Smithy RPC v2 CBOR in the path), or "".

    PutMetricData has no resource-level permission: it is granted on `*` and scoped by the
    `cloudwatch:namespace` condition (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html),
    which test_iam_coverage checks apart."""
    prefix = f"/service/{_CLOUDWATCH_SERVICE_ID}/operation/"
    if call.path.startswith(prefix):
        return call.path.removeprefix(prefix)
    service, _, operation = call.target.partition(".")
    return operation if service == _CLOUDWATCH_SERVICE_ID else ""


# -- Glue and Athena (JSON protocol: the operation is in X-Amz-Target) -----------------------------


def _json_protocol(call: AwsCall, names: Names) -> list[Permission]:
    service, _, operation = call.target.partition(".")
    request = json.loads(call.body or b"{}")
    if service == "AWSGlue":
        return [(f"glue:{operation}", arn) for arn in _glue_resources(request, names)]
    if service == "AmazonAthena":
        workgroup = request.get("WorkGroup", names.workgroup)
        arn = f"arn:{names.partition}:athena:{names.region}:{names.account}:workgroup/{workgroup}"
        needed = [(f"athena:{operation}", arn)]
        if operation == "StartQueryExecution":
            needed += _athena_query_as_caller(names)
        return needed
    raise AssertionError(f"no IAM mapping for {call.target}")


def _athena_query_as_caller(names: Names) -> list[Permission]:
    """What Athena does with the caller's permissions while it runs a query over the source."""
    bucket = f"arn:{names.partition}:s3:::{names.data_bucket}"
    source = f"{bucket}/{names.source_table}/dt=2026-11-26/part-0.parquet"
    result = f"{bucket}/{names.results_prefix}0a1b2c3d-query-id.csv"
    glue = _glue_resources({"DatabaseName": names.database, "Name": names.source_table}, names)
    return [
        ("s3:GetBucketLocation", bucket),
        ("s3:ListBucket", bucket),
        ("s3:GetObject", source),
        ("s3:PutObject", result),
        ("kms:Decrypt", names.data_key_arn),
        ("kms:GenerateDataKey", names.data_key_arn),
        *(("glue:GetDatabase", arn) for arn in glue[:2]),
        *(("glue:GetTable", arn) for arn in glue),
    ]


def _glue_resources(request: Mapping[str, Any], names: Names) -> list[str]:
    prefix = f"arn:{names.partition}:glue:{names.region}:{names.account}"
    resources = [f"{prefix}:catalog"]
    database = request.get("DatabaseName") or request.get("Name")
    table = request.get("TableName") or (request.get("Name") if "DatabaseName" in request else None)
    if database:
        resources.append(f"{prefix}:database/{database}")
    if table:
        resources.append(f"{prefix}:table/{database}/{table}")
    return resources


# -- policy evaluation ----------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, case_sensitive: bool) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` one character, nothing else special."""
    regex = ".*".join(".".join(map(re.escape, part.split("?"))) for part in pattern.split("*"))
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def allows(statements: Iterable[Mapping[str, Any]], permission: Permission) -> bool:
    action, resource = permission
    if action in _UNAUTHORIZED_CALLS:
        return True
    return any(
        statement.get("Effect") == "Allow"
        and any(_matches(a, action, case_sensitive=False) for a in _as_list(statement["Action"]))
        and any(_matches(r, resource, case_sensitive=True) for r in _as_list(statement["Resource"]))
        for statement in statements
    )


def denied(
    statements: Iterable[Mapping[str, Any]], calls: Iterable[AwsCall], names: Names
) -> list[str]:
    """Every permission the calls need that the statements do not grant, once each."""
    statements = list(statements)
    missing: dict[Permission, None] = {}
    for call in calls:
        for permission in required_permissions(call, names):
            if not allows(statements, permission):
                missing[permission] = None
    return [f"{action} on {resource}" for action, resource in missing]
