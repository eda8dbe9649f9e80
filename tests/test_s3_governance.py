"""Bucket policies, canned ACLs, Public Access Block, Ownership Controls and Object Lock — kept as AWS keeps them, and
in signature mode enforced for what a mock user tests with them: botocore-signed requests and anonymous ones (an
unsigned botocore client, and plain HTTP) against the live server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import httpx2
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import S3_KEYS, make_s3_client
from mockpanel.testing import RunningHub, settings_for


@pytest.fixture(scope="module")
def signed_hub():
    keys = f"{S3_KEYS['aws_access_key_id']}:{S3_KEYS['aws_secret_access_key']}"
    with RunningHub(settings_for(["s3"], {"s3": {"verify_signatures": "true", "access_keys": keys}})) as running:
        yield running


@pytest.fixture
def signed(signed_hub):
    return make_s3_client(signed_hub.urls["s3"])


@pytest.fixture
def anonymous(signed_hub):
    return boto3.client("s3", endpoint_url=signed_hub.urls["s3"], region_name="us-east-1", config=Config(signature_version=UNSIGNED))


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def public_read(bucket: str, resource: str = "/*", effect: str = "Allow", action: str = "s3:GetObject") -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Principal": "*", "Action": action,
                                                    "Resource": f"arn:aws:s3:::{bucket}{resource}"}]}


def test_a_policy_is_validated_stored_and_reported(signed):
    signed.create_bucket(Bucket="pol")
    for bad, message in (("not json", "valid JSON"), (json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
                         (json.dumps({"Statement": [{"Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol/*"}]}), "Effect"),
                         (json.dumps(public_read("other")), "invalid resource"), (json.dumps(public_read("pol", action="ec2:Run")), "invalid action")):
        with pytest.raises(ClientError) as refused:
            signed.put_bucket_policy(Bucket="pol", Policy=bad)
        assert code(refused) == "MalformedPolicy" and message in refused.value.response["Error"]["Message"], bad
    with pytest.raises(ClientError) as none:
        signed.get_bucket_policy(Bucket="pol")
    assert code(none) == "NoSuchBucketPolicy"
    signed.put_bucket_policy(Bucket="pol", Policy=json.dumps(public_read("pol")))
    assert json.loads(signed.get_bucket_policy(Bucket="pol")["Policy"]) == public_read("pol")
    assert signed.get_bucket_policy_status(Bucket="pol")["PolicyStatus"]["IsPublic"] is True
    signed.delete_bucket_policy(Bucket="pol")
    with pytest.raises(ClientError):
        signed.get_bucket_policy(Bucket="pol")


def test_anonymous_access_is_what_the_policy_grants_and_deny_wins(signed, anonymous, signed_hub):
    signed.create_bucket(Bucket="site")
    signed.put_object(Bucket="site", Key="public/a.txt", Body=b"open")
    signed.put_object(Bucket="site", Key="private/b.txt", Body=b"closed")
    with pytest.raises(ClientError) as refused:
        anonymous.get_object(Bucket="site", Key="public/a.txt")
    assert code(refused) == "AccessDenied"
    policy = public_read("site", "/public/*")
    policy["Statement"].append({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/public/secret*"})
    signed.put_bucket_policy(Bucket="site", Policy=json.dumps(policy))
    assert anonymous.get_object(Bucket="site", Key="public/a.txt")["Body"].read() == b"open"
    assert httpx2.get(f"{signed_hub.urls['s3']}/site/public/a.txt").content == b"open"  # a browser, plain HTTP
    for key in ("private/b.txt", "public/secret.txt"):
        with pytest.raises(ClientError) as refused:
            anonymous.get_object(Bucket="site", Key=key)
        assert code(refused) == "AccessDenied", key
    with pytest.raises(ClientError) as refused:
        anonymous.put_object(Bucket="site", Key="public/new.txt", Body=b"x")  # GetObject only
    assert code(refused) == "AccessDenied"
    signed.put_object(Bucket="site", Key="public/secret.txt", Body=b"s")
    with pytest.raises(ClientError) as refused:
        signed.get_object(Bucket="site", Key="public/secret.txt")  # an explicit Deny for "*" refuses signed callers too
    assert code(refused) == "AccessDenied"
    # Public Access Block: RestrictPublicBuckets ignores the public policy; BlockPublicPolicy refuses a new one
    signed.put_public_access_block(Bucket="site", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    with pytest.raises(ClientError) as refused:
        anonymous.get_object(Bucket="site", Key="public/a.txt")
    assert code(refused) == "AccessDenied"
    with pytest.raises(ClientError) as refused:
        signed.put_bucket_policy(Bucket="site", Policy=json.dumps(public_read("site")))
    assert code(refused) == "AccessDenied"
    assert signed.get_public_access_block(Bucket="site")["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    signed.delete_public_access_block(Bucket="site")
    assert anonymous.get_object(Bucket="site", Key="public/a.txt")["Body"].read() == b"open"


def test_canned_acls_expand_into_grants_and_grant_anonymous_reads(signed, anonymous):
    signed.create_bucket(Bucket="acls", ACL="public-read")
    grants = signed.get_bucket_acl(Bucket="acls")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"} in grants
    signed.put_object(Bucket="acls", Key="open", Body=b"o", ACL="public-read")
    signed.put_object(Bucket="acls", Key="shut", Body=b"s")
    assert anonymous.get_object(Bucket="acls", Key="open")["Body"].read() == b"o"
    assert [o["Key"] for o in anonymous.list_objects_v2(Bucket="acls")["Contents"]] == ["open", "shut"]  # bucket READ lists
    with pytest.raises(ClientError) as refused:
        anonymous.get_object(Bucket="acls", Key="shut")
    assert code(refused) == "AccessDenied"
    signed.put_object_acl(Bucket="acls", Key="shut", ACL="log-delivery-write")
    assert {g["Permission"] for g in signed.get_object_acl(Bucket="acls", Key="shut")["Grants"]} == {"FULL_CONTROL", "WRITE", "READ_ACP"}
    signed.put_public_access_block(Bucket="acls", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    with pytest.raises(ClientError) as refused:
        anonymous.get_object(Bucket="acls", Key="open")  # IgnorePublicAcls
    assert code(refused) == "AccessDenied"
    with pytest.raises(ClientError) as refused:
        signed.put_object(Bucket="acls", Key="again", Body=b"x", ACL="public-read")  # BlockPublicAcls
    assert code(refused) == "AccessDenied"


def test_bucket_owner_enforced_refuses_acls(signed):
    signed.create_bucket(Bucket="owned")
    with pytest.raises(ClientError) as unset:
        signed.get_bucket_ownership_controls(Bucket="owned")
    assert code(unset) == "OwnershipControlsNotFoundError"
    signed.put_bucket_ownership_controls(Bucket="owned", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert signed.get_bucket_ownership_controls(Bucket="owned")["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    for call in (lambda: signed.put_object(Bucket="owned", Key="k", Body=b"x", ACL="public-read"),
                 lambda: signed.put_bucket_acl(Bucket="owned", ACL="public-read")):
        with pytest.raises(ClientError) as refused:
            call()
        assert code(refused) == "AccessControlListNotSupported"
    signed.put_object(Bucket="owned", Key="k", Body=b"x", ACL="bucket-owner-full-control")  # the one ACL it takes
    signed.delete_bucket_ownership_controls(Bucket="owned")
    signed.put_object(Bucket="owned", Key="k", Body=b"x", ACL="public-read")


def test_object_lock_retention_legal_hold_and_governance_bypass(signed, signed_hub):
    signed.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    assert signed.get_bucket_versioning(Bucket="vault")["Status"] == "Enabled"
    signed.put_object_lock_configuration(Bucket="vault", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    assert signed.get_object_lock_configuration(Bucket="vault")["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    governed = signed.put_object(Bucket="vault", Key="g", Body=b"1")["VersionId"]
    head = signed.head_object(Bucket="vault", Key="g")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc)
    with pytest.raises(ClientError) as refused:
        signed.delete_object(Bucket="vault", Key="g", VersionId=governed)
    assert code(refused) == "AccessDenied"
    signed.delete_object(Bucket="vault", Key="g")  # a delete marker is allowed: the locked version stays
    assert signed.get_object(Bucket="vault", Key="g", VersionId=governed)["Body"].read() == b"1"
    signed.delete_object(Bucket="vault", Key="g", VersionId=governed, BypassGovernanceRetention=True)

    until = datetime.now(timezone.utc) + timedelta(days=30)
    compliant = signed.put_object(Bucket="vault", Key="c", Body=b"2", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)["VersionId"]
    for call in (lambda: signed.delete_object(Bucket="vault", Key="c", VersionId=compliant, BypassGovernanceRetention=True),
                 lambda: signed.put_object_retention(Bucket="vault", Key="c", VersionId=compliant, BypassGovernanceRetention=True,
                                                     Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})):
        with pytest.raises(ClientError) as refused:
            call()
        assert code(refused) == "AccessDenied"
    deleted = signed.delete_objects(Bucket="vault", Delete={"Objects": [{"Key": "c", "VersionId": compliant}]})
    assert deleted["Errors"][0]["Code"] == "AccessDenied"
    retention = signed.get_object_retention(Bucket="vault", Key="c", VersionId=compliant)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    # the mock's clock moves past the date: the version may go
    httpx2.post(f"{signed_hub.urls['s3']}/__mockpanel/s3/clock", json={"advance_days": 31}).raise_for_status()
    signed.delete_object(Bucket="vault", Key="c", VersionId=compliant)

    held = signed.put_object(Bucket="vault", Key="h", Body=b"3", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert signed.get_object_legal_hold(Bucket="vault", Key="h", VersionId=held)["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError) as refused:
        signed.delete_object(Bucket="vault", Key="h", VersionId=held, BypassGovernanceRetention=True)
    assert code(refused) == "AccessDenied"
    signed.put_object_legal_hold(Bucket="vault", Key="h", VersionId=held, LegalHold={"Status": "OFF"})
    signed.delete_object(Bucket="vault", Key="h", VersionId=held, BypassGovernanceRetention=True)
    httpx2.delete(f"{signed_hub.urls['s3']}/__mockpanel/s3/clock").raise_for_status()


def test_a_bucket_without_object_lock_takes_no_retention(signed):
    signed.create_bucket(Bucket="plainbucket")
    with pytest.raises(ClientError) as refused:
        signed.put_object(Bucket="plainbucket", Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
    assert code(refused) == "InvalidRequest"
    with pytest.raises(ClientError) as missing:
        signed.get_object_lock_configuration(Bucket="plainbucket")
    assert code(missing) == "ObjectLockConfigurationNotFoundError"


def test_an_object_lock_bucket_keeps_versioning_enabled(signed, signed_hub):
    """AWS refuses to suspend versioning on an Object Lock bucket (InvalidBucketState): suspended, a COMPLIANCE-locked
    object written then would be the null version, which a plain PUT replaces."""
    signed.create_bucket(Bucket="kept-vault", ObjectLockEnabledForBucket=True)
    with pytest.raises(ClientError) as refused:
        signed.put_bucket_versioning(Bucket="kept-vault", VersioningConfiguration={"Status": "Suspended"})
    assert code(refused) == "InvalidBucketState" and refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert signed.get_bucket_versioning(Bucket="kept-vault")["Status"] == "Enabled"
    until = datetime.now(timezone.utc) + timedelta(days=1)
    first = signed.put_object(Bucket="kept-vault", Key="ledger", Body=b"locked", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    signed.put_object(Bucket="kept-vault", Key="ledger", Body=b"overwritten?")
    assert signed.get_object(Bucket="kept-vault", Key="ledger", VersionId=first["VersionId"])["Body"].read() == b"locked"
    from mockpanel.spec import Conflict

    storage = signed_hub.hub.facade("s3")
    with pytest.raises(Conflict, match="Object Lock"):
        signed_hub.run(lambda: storage.set_versioning("kept-vault", "Suspended"))
    signed.put_bucket_versioning(Bucket="kept-vault", VersioningConfiguration={"Status": "Enabled"})  # enabling again is fine
