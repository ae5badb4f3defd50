"""An independent client of the Secrets Store CSI provider API (v1alpha1):
the messages are built here from the published field numbers (no protoc,
no code shared with keyfs) with python3-protobuf's descriptor pool, and
the calls go through python3-grpcio over a unix socket.  Run it with
Debian's /usr/bin/python3 (the one with grpc and google.protobuf)."""
import json

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

try:
    from google.protobuf import message_factory
except ImportError:  # pragma: no cover
    message_factory = None

PACKAGE = "v1alpha1"
SERVICE = "/v1alpha1.CSIDriverProvider/"

_F = descriptor_pb2.FieldDescriptorProto
# (message, [(name, number, type, label, type_name)])
_MESSAGES = [
    ("VersionRequest", [("version", 1, _F.TYPE_STRING, None)]),
    ("VersionResponse", [("version", 1, _F.TYPE_STRING, None),
                         ("runtime_name", 2, _F.TYPE_STRING, None),
                         ("runtime_version", 3, _F.TYPE_STRING, None)]),
    ("ObjectVersion", [("id", 1, _F.TYPE_STRING, None),
                       ("version", 2, _F.TYPE_STRING, None)]),
    ("Error", [("code", 1, _F.TYPE_STRING, None)]),
    ("File", [("path", 1, _F.TYPE_STRING, None),
              ("mode", 2, _F.TYPE_INT32, None),
              ("contents", 3, _F.TYPE_BYTES, None)]),
    ("MountRequest", [("attributes", 1, _F.TYPE_STRING, None),
                      ("secrets", 2, _F.TYPE_STRING, None),
                      ("target_path", 3, _F.TYPE_STRING, None),
                      ("permission", 4, _F.TYPE_STRING, None),
                      ("current_object_version", 5, _F.TYPE_MESSAGE,
                       "ObjectVersion", True)]),
    ("MountResponse", [("object_version", 1, _F.TYPE_MESSAGE,
                        "ObjectVersion", True),
                       ("error", 2, _F.TYPE_MESSAGE, "Error"),
                       ("files", 3, _F.TYPE_MESSAGE, "File", True)]),
]


def _build():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="keyfs_test_v1alpha1.proto", package=PACKAGE, syntax="proto3")
    for mname, fields in _MESSAGES:
        m = fdp.message_type.add(name=mname)
        for spec in fields:
            name, num, typ = spec[0], spec[1], spec[2]
            f = m.field.add(name=name, number=num, type=typ)
            repeated = len(spec) > 4 and spec[4]
            f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if typ == _F.TYPE_MESSAGE:
                f.type_name = ".%s.%s" % (PACKAGE, spec[3])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = {}
    for mname, _ in _MESSAGES:
        d = pool.FindMessageTypeByName("%s.%s" % (PACKAGE, mname))
        if hasattr(message_factory, "GetMessageClass"):
            classes[mname] = message_factory.GetMessageClass(d)
        else:
            classes[mname] = message_factory.MessageFactory(
                pool).GetPrototype(d)
    return classes


M = _build()
VersionRequest = M["VersionRequest"]
VersionResponse = M["VersionResponse"]
MountRequest = M["MountRequest"]
MountResponse = M["MountResponse"]
ObjectVersion = M["ObjectVersion"]


def _raw(b):
    return b


class Client:
    """One channel to a provider's socket.  mount()/version() return the
    decoded answers; a gRPC status other than OK raises grpc.RpcError."""

    def __init__(self, socket_path, timeout=30):
        self.timeout = timeout
        self.channel = grpc.insecure_channel("unix:" + socket_path)
        self._version = self.channel.unary_unary(
            SERVICE + "Version",
            request_serializer=VersionRequest.SerializeToString,
            response_deserializer=VersionResponse.FromString)
        self._mount = self.channel.unary_unary(
            SERVICE + "Mount",
            request_serializer=MountRequest.SerializeToString,
            response_deserializer=MountResponse.FromString)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def version(self, version="v1alpha1"):
        return self._version(VersionRequest(version=version),
                             timeout=self.timeout)

    def mount(self, attributes, secrets=None, permission="420", current=(),
              target_path="/var/lib/kubelet/pods/x/volumes/csi/mnt"):
        """attributes, secrets: dicts (JSON-encoded here) or str (sent
        as they are); current: [(id, version)]."""
        req = MountRequest(
            attributes=(attributes if isinstance(attributes, str)
                        else json.dumps(attributes)),
            secrets=(secrets if isinstance(secrets, str)
                     else json.dumps(secrets or {})),
            target_path=target_path, permission=permission)
        for i, v in current:
            req.current_object_version.add(id=i, version=v)
        return self._mount(req, timeout=self.timeout)

    def raw(self, method, data):
        """Call SERVICE+method with raw request bytes; the raw answer."""
        fn = self.channel.unary_unary(SERVICE + method,
                                      request_serializer=_raw,
                                      response_deserializer=_raw)
        return fn(data, timeout=self.timeout)


def files(resp):
    """[(path, mode, contents)] of a MountResponse."""
    return [(f.path, f.mode, f.contents) for f in resp.files]


def versions(resp):
    return [(v.id, v.version) for v in resp.object_version]
