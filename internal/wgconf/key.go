package wgconf

import (
	"crypto/ecdh"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeyLen is the length of every WireGuard key: a Curve25519 scalar or point, or a
// preshared symmetric key (the WireGuard paper, §5.4: "all keys are 32 bytes").
const KeyLen = 32

// Key is a private, public or preshared WireGuard key.
type Key [KeyLen]byte

// ParseKey decodes a key written as wg(8) writes them: the standard base64 of 32 bytes,
// 44 characters with one '=' of padding.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != base64.StdEncoding.EncodedLen(KeyLen) {
		return k, fmt.Errorf("a key is 44 characters of base64 (32 bytes), this one has %d characters", len(s))
	}
	// Strict: the unused low bits of the last character must be zero, so that a key has
	// exactly one spelling.
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("not valid base64: %v", err)
	}
	if len(b) != KeyLen {
		return k, fmt.Errorf("decodes to %d bytes, a key has 32", len(b))
	}
	copy(k[:], b)
	return k, nil
}

// IsZero reports whether every byte of k is zero.
func (k Key) IsZero() bool {
	var z Key
	return subtle.ConstantTimeCompare(k[:], z[:]) == 1
}

// String returns the base64 form, as wg(8) prints keys.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the lowercase hex form that the UAPI uses.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// PublicKey returns the public key of the private key k: X25519(k, 9) (RFC 7748 §6.1;
// the scalar is clamped there, as WireGuard clamps its private keys).
func (k Key) PublicKey() (Key, error) {
	var pub Key
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		return pub, err
	}
	b := priv.PublicKey().Bytes()
	if len(b) != KeyLen {
		return pub, errors.New("wgconf: X25519 public key of unexpected length")
	}
	copy(pub[:], b)
	return pub, nil
}
