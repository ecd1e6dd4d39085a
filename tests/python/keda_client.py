#!/usr/bin/env python3
"""Independent KEDA external-scaler client (grpcio), used by tests/grpc_python.rs.

Generates the stubs AT RUN TIME from proto/externalscaler.proto with grpc_tools.protoc into
a temp dir, then calls every rpc the way KEDA does and prints ONE JSON object on stdout:

  python keda_client.py 127.0.0.1:9090 --namespace prod --name orders-so \
      --metadata jobName=orders --metadata maxTaskManagers=10 [--bad-key minTaskManager]

Each result is {"ok": true, ...fields} or {"ok": false, "code": "UNAVAILABLE",
"details": "..."}. The script asserts nothing: the caller does. It works against the
in-process test server and against a running `flink-keda-scaler serve`.
"""

import argparse
import importlib
import json
import os
import sys
import tempfile

import grpc

DEADLINE_S = 5.0
SCALER = "externalscaler.ExternalScaler"


def generate_stubs(proto_path, out_dir):
    from grpc_tools import protoc

    proto_dir = os.path.dirname(os.path.abspath(proto_path))
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "protoc",
        f"-I{proto_dir}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        os.path.abspath(proto_path),
    ])
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed with {rc} for {proto_path}")
    sys.path.insert(0, out_dir)
    return importlib.import_module("externalscaler_pb2"), importlib.import_module(
        "externalscaler_pb2_grpc")


def error(e):
    return {"ok": False, "code": e.code().name, "details": e.details()}


def call(fn):
    try:
        return fn()
    except grpc.RpcError as e:
        return error(e)


def spec_json(resp):
    return {
        "ok": True,
        "metricSpecs": [
            {"metricName": s.metricName, "targetSize": s.targetSize,
             "targetSizeFloat": s.targetSizeFloat} for s in resp.metricSpecs
        ],
    }


def first_of_stream(stream, convert):
    try:
        for msg in stream:
            return convert(msg)
        return {"ok": True, "ended": True}
    except grpc.RpcError as e:
        return error(e)
    finally:
        stream.cancel()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("address", help="host:port of the scaler")
    p.add_argument("--proto", default=os.path.join(here, "..", "..", "proto",
                                                   "externalscaler.proto"))
    p.add_argument("--namespace", default="default")
    p.add_argument("--name", default="flink-job")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--bad-key", default="minTaskManager",
                   help="a misspelled metadata key for the INVALID_ARGUMENT case")
    args = p.parse_args()

    metadata = dict(kv.split("=", 1) for kv in args.metadata)
    with tempfile.TemporaryDirectory(prefix="fks-stubs-") as out_dir:
        pb, pb_grpc = generate_stubs(args.proto, out_dir)
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        result = {"address": args.address, "grpcio": grpc.__version__}
        with grpc.insecure_channel(args.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=DEADLINE_S)
            stub = pb_grpc.ExternalScalerStub(channel)
            ref = pb.ScaledObjectRef(name=args.name, namespace=args.namespace,
                                     scalerMetadata=metadata)

            health = health_pb2_grpc.HealthStub(channel)
            result["health"] = {}
            for service in ["", SCALER]:
                result["health"][service] = call(lambda: {
                    "ok": True,
                    "status": health_pb2.HealthCheckResponse.ServingStatus.Name(
                        health.Check(health_pb2.HealthCheckRequest(service=service),
                                     timeout=DEADLINE_S).status),
                })

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

            def list_services():
                req = reflection_pb2.ServerReflectionRequest(list_services="")
                for resp in reflection.ServerReflectionInfo(iter([req]), timeout=DEADLINE_S):
                    return {"ok": True, "services": sorted(
                        s.name for s in resp.list_services_response.service)}
                return {"ok": False, "code": "EMPTY", "details": "no reflection response"}

            result["reflection"] = call(list_services)

            result["getMetricSpec"] = call(
                lambda: spec_json(stub.GetMetricSpec(ref, timeout=DEADLINE_S)))
            specs = result["getMetricSpec"].get("metricSpecs") or [{"metricName": ""}]
            metric_name = specs[0]["metricName"]

            def get_metrics(name):
                resp = stub.GetMetrics(
                    pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name),
                    timeout=DEADLINE_S)
                return {"ok": True, "requested": name, "metricValues": [
                    {"metricName": v.metricName, "metricValue": v.metricValue,
                     "metricValueFloat": v.metricValueFloat} for v in resp.metricValues]}

            result["getMetrics"] = call(lambda: get_metrics(metric_name))
            # What the HPA path may send: upper case with a leftover trigger index.
            result["getMetricsPrefixedUpper"] = call(
                lambda: get_metrics("s0-" + metric_name.upper()))
            result["isActive"] = call(lambda: {
                "ok": True, "result": stub.IsActive(ref, timeout=DEADLINE_S).result})
            result["streamIsActive"] = first_of_stream(
                stub.StreamIsActive(ref, timeout=DEADLINE_S),
                lambda m: {"ok": True, "result": m.result})
            result["streamMetricSpec"] = first_of_stream(
                stub.StreamMetricSpec(ref, timeout=DEADLINE_S), spec_json)

            bad = dict(metadata)
            bad[args.bad_key] = "2"
            bad_ref = pb.ScaledObjectRef(name=args.name, namespace=args.namespace,
                                         scalerMetadata=bad)
            result["invalidArgument"] = call(
                lambda: spec_json(stub.GetMetricSpec(bad_ref, timeout=DEADLINE_S)))
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
