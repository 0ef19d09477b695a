// Package wgtest helps tests run wireguard-go devices in one process: keys, a pair of
// channel binds, and devices that close when the test ends.
//
// Layer: adapter (imports golang.zx2c4.com/wireguard's conn, conn/bindtest, device and tun,
// and testing). For tests and the examples' tests only. Safe for concurrent use.
package wgtest

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// Endpoints of the two channel binds of Binds: bind 0 reaches its peer at Endpoint0, bind
// 1 at Endpoint1 (as bindtest numbers them).
const (
	Endpoint0 = "127.0.0.1:1"
	Endpoint1 = "127.0.0.1:2"
)

// Binds returns two connected in-memory binds.
func Binds() [2]conn.Bind { return bindtest.NewChannelBinds() }

// Keypair returns a fresh X25519 private key and its public key, hex-encoded as
// wireguard-go's UAPI wants them.
func Keypair(t testing.TB) (priv, pub string) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k.Bytes()), hex.EncodeToString(k.PublicKey().Bytes())
}

// Logger is silent unless WISP_WG_VERBOSE is set, then logs through t.
func Logger(t testing.TB) *device.Logger {
	if os.Getenv("WISP_WG_VERBOSE") == "" {
		return device.NewLogger(device.LogLevelSilent, "")
	}
	return &device.Logger{Verbosef: t.Logf, Errorf: t.Logf}
}

// Up creates a device on td and bind, configures it with the UAPI text uapi, brings it up
// and closes it when the test ends (which closes td).
func Up(t testing.TB, td tun.Device, bind conn.Bind, uapi string) *device.Device {
	t.Helper()
	d := device.NewDevice(td, bind, Logger(t))
	t.Cleanup(d.Close)
	if err := d.IpcSet(uapi); err != nil {
		t.Fatal(err)
	}
	if err := d.Up(); err != nil {
		t.Fatal(err)
	}
	return d
}
