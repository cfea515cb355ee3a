"""InstrumentedFunction in Python: the same registration handler traced by
Powertools for AWS Lambda's Tracer, run by `baton invoke` through the real
awslambdaric runtime client."""
import os
import random

from aws_lambda_powertools import Tracer

tracer = Tracer()  # service from POWERTOOLS_SERVICE_NAME

import requests  # noqa: E402  (imported after the Tracer, which patches it)

USERS_API_URL = os.environ.get("USERS_API_URL", "http://127.0.0.1:4400")


class InvalidUser(Exception):
    pass


@tracer.capture_method(capture_response=False)
def submit_user(record):
    tracer.put_annotation("user_id", record["user_id"])
    tracer.put_metadata("request", record)
    response = requests.post(USERS_API_URL + "/users", json=record, timeout=5)
    response.raise_for_status()
    return {"user_id": record["user_id"], "status": response.status_code}


@tracer.capture_lambda_handler
def lambda_handler(event, context):
    if not event.get("name", "").strip():
        raise InvalidUser("the user has no name")
    if "@" not in event.get("email", ""):
        raise InvalidUser("%r is not an e-mail address" % event.get("email"))
    print("registering", event["email"])
    record = {"user_id": "u-%012x" % random.getrandbits(48), "name": event["name"], "email": event["email"]}
    return submit_user(record)
