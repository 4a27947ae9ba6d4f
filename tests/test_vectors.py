"""Public test vectors, run against crypto.primitives exactly as the protocol calls them."""

from __future__ import annotations

import pytest

from crypto import primitives as p
from crypto.errors import AuthenticationError, SignatureError

h = bytes.fromhex


# RFC 7748 section 5.2 (single-step) and section 6.1 (Diffie-Hellman).
@pytest.mark.parametrize(
    ("scalar", "u", "out"),
    [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ],
)
def test_rfc7748_x25519(scalar: str, u: str, out: str) -> None:
    assert p.x25519(h(scalar), h(u)) == h(out)


def test_rfc7748_diffie_hellman() -> None:
    a_priv = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    a_pub = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    b_priv = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    b_pub = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert p.x25519_base(a_priv) == a_pub
    assert p.x25519_base(b_priv) == b_pub
    assert p.x25519(a_priv, b_pub) == shared
    assert p.x25519(b_priv, a_pub) == shared


def test_x25519_rejects_low_order_point() -> None:
    with pytest.raises(AuthenticationError):
        p.x25519(bytes(range(32)), bytes(32))


# RFC 8032 section 7.1, TEST 1-3.
@pytest.mark.parametrize(
    ("seed", "public", "message", "signature"),
    [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
            "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
            "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290"
            "ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ],
)
def test_rfc8032_ed25519(seed: str, public: str, message: str, signature: str) -> None:
    pub, secret = p.ed25519_keypair(h(seed))
    assert pub == h(public)
    assert p.ed25519_sign(secret, h(message)) == h(signature)
    p.ed25519_verify(pub, h(message), h(signature))
    forged = bytearray(h(signature))
    forged[0] ^= 1
    with pytest.raises(SignatureError):
        p.ed25519_verify(pub, h(message), bytes(forged))
    with pytest.raises(SignatureError):
        p.ed25519_verify(pub, h(message) + b"x", h(signature))


# draft-irtf-cfrg-xchacha-03, appendix A.3.1.
def test_xchacha20poly1305_draft_a31() -> None:
    plaintext = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
        b"the future, sunscreen would be it."
    )
    aad = h("50515253c0c1c2c3c4c5c6c7")
    key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    nonce = h("404142434445464748494a4b4c4d4e4f5051525354555657")
    ciphertext = h(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa644"
        "0bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e"
        "3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
    )
    tag = h("c0875924c1c7987947deafd8780acf49")
    assert p.xchacha_encrypt(key, nonce, plaintext, aad) == ciphertext + tag
    assert p.xchacha_decrypt(key, nonce, ciphertext + tag, aad) == plaintext
    with pytest.raises(AuthenticationError):
        p.xchacha_decrypt(key, nonce, ciphertext + tag, aad + b"!")


# RFC 8439 section 2.8.2 (ChaCha20-Poly1305 AEAD), the cipher inside our Noise sessions.
def test_rfc8439_chacha20poly1305() -> None:
    plaintext = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
        b"the future, sunscreen would be it."
    )
    aad = h("50515253c0c1c2c3c4c5c6c7")
    key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    nonce = h("070000004041424344454647")
    out = p.chacha_encrypt(key, nonce, plaintext, aad)
    assert out[:16] == h("d31a8d34648e60db7b86afbc53ef7ec2")
    assert out[-16:] == h("1ae10b594f09e26a7e902ecbd0600691")
    assert p.chacha_decrypt(key, nonce, out, aad) == plaintext


# RFC 7693 appendix A: BLAKE2b-512("abc").
def test_rfc7693_blake2b() -> None:
    expected = h(
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
        "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
    )
    assert p.blake2b(b"abc") == expected
