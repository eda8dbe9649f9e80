"""Tagging, ACLs and bucket CORS: stored and given back as S3 does (boto3), CORS preflights answered from the rules
(raw HTTP and a real page in Chromium on another origin)."""

from __future__ import annotations


import httpx2
import pytest
from botocore.exceptions import ClientError

from conftest import page_server
from mockpanel.testing import RunningHub, settings_for


def error(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], exc.value.response["Error"]["Code"]


def test_object_tagging_put_get_delete_and_on_upload(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="team=core&env=dev")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "team", "Value": "core"}, {"Key": "env", "Value": "dev"}]
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "a", "Value": "1"}]
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []

    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "src", "Value": "yes"}]})
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "k"})
    assert s3.get_object_tagging(Bucket=bucket, Key="copied")["TagSet"] == [{"Key": "src", "Value": "yes"}]
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "k"}, TaggingDirective="REPLACE", Tagging="new=1")
    assert s3.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"] == [{"Key": "new", "Value": "1"}]

    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="from=mpu")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="mp")["TagSet"] == [{"Key": "from", "Value": "mpu"}]


@pytest.mark.parametrize("tags, code", [
    ([{"Key": f"k{i}", "Value": "v"} for i in range(11)], "BadRequest"),
    ([{"Key": "k" * 129, "Value": "v"}], "InvalidTag"),
    ([{"Key": "k", "Value": "v" * 257}], "InvalidTag"),
    ([{"Key": "aws:owner", "Value": "v"}], "InvalidTag"),
    ([{"Key": "same", "Value": "1"}, {"Key": "same", "Value": "2"}], "InvalidTag"),
])
def test_invalid_tags_are_refused_and_the_old_ones_stay(s3, bucket, tags, code):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    with pytest.raises(ClientError) as refused:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tags})
    assert error(refused) == (400, code)
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "keep", "Value": "me"}]


def test_bucket_tagging(s3, bucket):
    with pytest.raises(ClientError) as none:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error(none) == (404, "NoSuchTagSet")
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "cost-center", "Value": "42"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "cost-center", "Value": "42"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket=bucket)


def test_acls_are_kept_and_given_back(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    grants = s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"} in grants
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="private")
    assert [g["Permission"] for g in s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]] == ["FULL_CONTROL"]
    policy = {"Owner": {"ID": "mockpanel"}, "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "someone-else"}, "Permission": "READ_ACP"}]}
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == [{"Grantee": {"Type": "CanonicalUser", "ID": "someone-else"}, "Permission": "READ_ACP"}]
    with pytest.raises(ClientError) as bad:
        s3.put_object_acl(Bucket=bucket, Key="k", ACL="everyone-please")
    assert error(bad)[0] == 400


def test_bucket_cors_rules_answer_preflights(s3, s3_url, bucket):
    with pytest.raises(ClientError) as none:
        s3.get_bucket_cors(Bucket=bucket)
    assert error(none) == (404, "NoSuchCORSConfiguration")
    rules = {"CORSRules": [{"AllowedOrigins": ["http://app.example"], "AllowedMethods": ["PUT", "GET"], "AllowedHeaders": ["content-type"],
                            "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=rules)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules["CORSRules"]

    allowed = httpx2.options(f"{s3_url}/{bucket}/file.txt", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "PUT",
                                                                     "Access-Control-Request-Headers": "content-type"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://app.example"
    assert "PUT" in allowed.headers["access-control-allow-methods"] and allowed.headers["access-control-max-age"] == "600"
    other = httpx2.options(f"{s3_url}/{bucket}/file.txt", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
    assert other.status_code == 403 and "<Code>AccessForbidden</Code>" in other.text
    assert httpx2.options(f"{s3_url}/{bucket}/file.txt").status_code == 400  # no Origin: not a preflight
    got = httpx2.put(f"{s3_url}/{bucket}/file.txt", content=b"hi", headers={"Origin": "http://app.example"})
    assert got.headers["access-control-allow-origin"] == "http://app.example" and got.headers["access-control-expose-headers"] == "ETag"

    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=bucket)
    # no rules, and s3.cors = "any" (the default): every origin, as before
    anyone = httpx2.options(f"{s3_url}/{bucket}/file.txt", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
    assert anyone.status_code == 200


def test_cors_patterns_with_two_wildcards_are_refused_and_long_headers_match_fast(s3, s3_url, bucket):
    for field in ("AllowedOrigins", "AllowedHeaders"):
        rule = {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], field: ["*a*b"]}
        with pytest.raises(ClientError) as refused:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
        assert error(refused) == (400, "InvalidRequest")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["http://*.example"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-app-*"]}]})
    asked = ",".join(["x-app-" + "a" * 4000] * 2)
    allowed = httpx2.options(f"{s3_url}/{bucket}/k", headers={"Origin": "http://www.example", "Access-Control-Request-Method": "GET",
                                                              "Access-Control-Request-Headers": asked})
    assert allowed.status_code == 200
    refused = httpx2.options(f"{s3_url}/{bucket}/k", headers={"Origin": "http://www.example", "Access-Control-Request-Method": "GET",
                                                              "Access-Control-Request-Headers": "x-other"})
    assert refused.status_code == 403


def test_a_cors_configuration_over_64_kib_is_refused(s3_url, bucket):
    rules = "".join(f"<CORSRule><AllowedOrigin>http://site-{i}.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
                    for i in range(1200))
    answer = httpx2.put(f"{s3_url}/{bucket}?cors", content=f"<CORSConfiguration>{rules}</CORSConfiguration>".encode())
    assert answer.status_code == 400 and "<Code>MalformedXML</Code>" in answer.text


def test_cors_bucket_mode_follows_rules_only_but_not_on_convenience_paths():
    with RunningHub(settings_for(["s3"], {"s3": {"cors": "bucket"}})) as running:
        url = running.urls["s3"]
        httpx2.put(f"{url}/ruleless")
        refused = httpx2.options(f"{url}/ruleless/k", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
        assert refused.status_code == 403
        health = httpx2.options(f"{url}/health", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
        assert health.status_code == 200


def test_a_page_on_another_origin_uploads_where_the_rules_allow_it(page, s3, s3_url):
    with page_server() as origin:
        for name, allowed in (("cors-open", origin), ("cors-closed", "http://someone-else.example")):
            s3.create_bucket(Bucket=name)
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
                {"AllowedOrigins": [allowed], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"]}]})
        page.goto(origin + "/")
        script = """async ([url]) => {
            try { const r = await fetch(url, {method: 'PUT', body: 'from the page', headers: {'Content-Type': 'text/plain'}});
                  return 'status ' + r.status; }
            catch (e) { return 'blocked: ' + e.message; } }"""
        assert page.evaluate(script, [f"{s3_url}/cors-open/page.txt"]) == "status 200"
        assert s3.get_object(Bucket="cors-open", Key="page.txt")["Body"].read() == b"from the page"
        assert page.evaluate(script, [f"{s3_url}/cors-closed/page.txt"]).startswith("blocked: ")
        with pytest.raises(ClientError):
            s3.head_object(Bucket="cors-closed", Key="page.txt")  # the preflight failed: nothing was sent
