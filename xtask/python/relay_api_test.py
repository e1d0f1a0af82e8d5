"""The relay's gRPC API from Python, as a client in another language would use it.

Stubs are generated from proto/ at test time with grpcio-tools. Key material comes from the
Rust CLI (`tigress dev ...`), because the relay checks every signature; the envelope contents are
opaque bytes, which the relay cannot tell from ciphertext. Run by `cargo xtask test`, which sets:

- TIGRESS_RELAY: the relay's host:port;
- TIGRESS_BIN: the `tigress` binary;
- TIGRESS_PROTO: the proto/ folder.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import unittest

import grpc
from grpc_tools import protoc

RELAY = os.environ["TIGRESS_RELAY"]
TIGRESS = os.environ["TIGRESS_BIN"]
PROTO_ROOT = os.environ["TIGRESS_PROTO"]

STUBS = tempfile.mkdtemp(prefix="tigress-stubs-")
if protoc.main(["protoc", f"-I{PROTO_ROOT}", f"--python_out={STUBS}", f"--grpc_python_out={STUBS}", "tigress/relay/v1/relay.proto"]) != 0:
    sys.exit("protoc failed to generate the Python stubs")
sys.path.insert(0, STUBS)

from tigress.relay.v1 import relay_pb2 as pb  # noqa: E402
from tigress.relay.v1 import relay_pb2_grpc as rpc  # noqa: E402


def b64(text):
    return base64.b64decode(text)


def signed_key(message_type, fields):
    return message_type(key_id=fields["key_id"], public_key=b64(fields["public_key"]), signature=b64(fields["signature"]))


def tigress_dev(home, *arguments):
    output = subprocess.run([TIGRESS, "--home", home, "dev", *arguments], check=True, capture_output=True, text=True)
    return json.loads(output.stdout)


class Device:
    """A device registered through the API, with keys from `tigress dev`."""

    def __init__(self, channel):
        self.home = tempfile.mkdtemp(prefix="tigress-dev-home-")
        registration = rpc.RegistrationStub(channel)
        challenge = registration.CreateChallenge(pb.CreateChallengeRequest()).challenge
        keys = tigress_dev(self.home, "registration-request", "--challenge", challenge.hex(), "--count", "3")
        request = pb.RegisterDeviceRequest(
            identity_key=b64(keys["identity_key"]),
            registration_id=keys["registration_id"],
            challenge=challenge,
            challenge_signature=b64(keys["challenge_signature"]),
            signed_prekey=signed_key(pb.SignedPreKey, keys["signed_prekey"]),
            kyber_last_resort_prekey=signed_key(pb.KyberPreKey, keys["kyber_last_resort_prekey"]),
            one_time_prekeys=[pb.EcPreKey(key_id=key["key_id"], public_key=b64(key["public_key"])) for key in keys["one_time_prekeys"]],
            one_time_kyber_prekeys=[signed_key(pb.KyberPreKey, key) for key in keys["one_time_kyber_prekeys"]],
        )
        response = registration.RegisterDevice(request)
        self.address = response.address
        self.identity_key = request.identity_key
        self.metadata = (("authorization", f"Bearer {response.credential}"),)


class RelayApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(RELAY)
        cls.keys = rpc.KeysStub(cls.channel)
        cls.mailbox = rpc.MailboxStub(cls.channel)
        cls.alice = Device(cls.channel)
        cls.bob = Device(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_prekeys_upload_count_and_bundle(self):
        bob = self.bob
        count = self.keys.GetPreKeyCount(pb.GetPreKeyCountRequest(address=bob.address), metadata=bob.metadata)
        self.assertEqual((count.one_time_prekeys, count.one_time_kyber_prekeys), (3, 3))

        fresh = tigress_dev(bob.home, "prekey-upload", "--count", "5")
        upload = pb.UploadPreKeysRequest(
            address=bob.address,
            one_time_prekeys=[pb.EcPreKey(key_id=key["key_id"], public_key=b64(key["public_key"])) for key in fresh["one_time_prekeys"]],
            one_time_kyber_prekeys=[signed_key(pb.KyberPreKey, key) for key in fresh["one_time_kyber_prekeys"]],
        )
        stored = self.keys.UploadPreKeys(upload, metadata=bob.metadata)
        self.assertEqual((stored.one_time_prekeys, stored.one_time_kyber_prekeys), (5, 5))

        bundle = self.keys.GetPreKeyBundle(pb.GetPreKeyBundleRequest(address=bob.address), metadata=self.alice.metadata)
        self.assertEqual(bundle.identity_key, bob.identity_key)
        self.assertTrue(bundle.HasField("one_time_prekey"))
        self.assertFalse(bundle.kyber_prekey_is_last_resort)
        count = self.keys.GetPreKeyCount(pb.GetPreKeyCountRequest(address=bob.address), metadata=bob.metadata)
        self.assertEqual((count.one_time_prekeys, count.one_time_kyber_prekeys), (4, 4))

    def test_send_fetch_and_acknowledge(self):
        alice, bob = self.alice, self.bob
        content = os.urandom(300)
        send = pb.SendEnvelopeRequest(destination=bob.address, client_message_id=os.urandom(16), type=pb.ENVELOPE_TYPE_SIGNAL_MESSAGE, content=content)
        sent = self.mailbox.SendEnvelope(send, metadata=alice.metadata)
        retry = self.mailbox.SendEnvelope(send, metadata=alice.metadata)
        self.assertTrue(retry.duplicate)
        self.assertEqual(retry.envelope_id, sent.envelope_id)

        fetched = self.mailbox.FetchEnvelopes(pb.FetchEnvelopesRequest(address=bob.address), metadata=bob.metadata)
        envelopes = [envelope for envelope in fetched.envelopes if envelope.id == sent.envelope_id]
        self.assertEqual(len(envelopes), 1)
        self.assertEqual(envelopes[0].content, content)
        self.assertEqual(envelopes[0].source, alice.address)

        acknowledged = self.mailbox.AcknowledgeEnvelopes(pb.AcknowledgeEnvelopesRequest(address=bob.address, envelope_ids=[sent.envelope_id]), metadata=bob.metadata)
        self.assertEqual(acknowledged.removed, 1)
        fetched = self.mailbox.FetchEnvelopes(pb.FetchEnvelopesRequest(address=bob.address), metadata=bob.metadata)
        self.assertNotIn(sent.envelope_id, [envelope.id for envelope in fetched.envelopes])

    def test_missing_credential_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.mailbox.FetchEnvelopes(pb.FetchEnvelopesRequest(address=self.bob.address))
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_another_devices_mailbox_is_permission_denied(self):
        with self.assertRaises(grpc.RpcError) as raised:
            self.mailbox.FetchEnvelopes(pb.FetchEnvelopesRequest(address=self.bob.address), metadata=self.alice.metadata)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_invalid_field_is_named(self):
        send = pb.SendEnvelopeRequest(destination=self.bob.address, client_message_id=b"short", type=pb.ENVELOPE_TYPE_SIGNAL_MESSAGE, content=b"x")
        with self.assertRaises(grpc.RpcError) as raised:
            self.mailbox.SendEnvelope(send, metadata=self.alice.metadata)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("client_message_id must be 16 bytes, got 5", raised.exception.details())


if __name__ == "__main__":
    unittest.main(verbosity=2)
