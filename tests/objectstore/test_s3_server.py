"""The S3 server the object-store tests rely on: its conditional PUT must be atomic, or no test above it means
anything. Racers are released together by a barrier; per key exactly one may get 200 and the rest 412."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from s3_race import put_race, winners_per_round


def test_conditional_put_is_atomic_under_a_race(s3, trials):
    # Adobe S3Mock (check, then write) failed this shape at 16 x 50 with 12 of 50 keys won twice or more.
    procs, rounds = trials(12, 16), trials(40, 200)
    attempts = put_race(s3.env(), s3.bucket, "atomicity", procs, rounds)

    assert len(attempts) == procs * rounds
    assert winners_per_round(attempts) == {r: 1 for r in range(rounds)}
    assert {a.outcome for a in attempts} == {"won", "412"}
    client = s3.client()
    for a in attempts:
        if a.outcome == "won":  # the stored object is the winner's, whole
            assert client.get_object(Bucket=s3.bucket, Key=f"atomicity/{a.round}")["Body"].read() == a.body


def test_conditional_put_on_an_existing_key_is_refused_and_a_plain_put_overwrites(s3):
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="semantics/k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=s3.bucket, Key="semantics/k", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=s3.bucket, Key="semantics/k")["Body"].read() == b"first"
    client.put_object(Bucket=s3.bucket, Key="semantics/k", Body=b"third")
    assert client.get_object(Bucket=s3.bucket, Key="semantics/k")["Body"].read() == b"third"
