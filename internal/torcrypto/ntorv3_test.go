package torcrypto

import (
	"bytes"
	"io"
	"testing"
)

// Test vectors from proposal 332 §X.2.
func TestNtorV3Vector(t *testing.T) {
	B := [32]byte(unhex("f8307a2bc1870b00b828bb74dbb8fd88e632a6375ab3bcd1ae706aaa8b6cdd1d"))
	ID := [32]byte(unhex("9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2"))
	x := [32]byte(unhex("b825a3719147bcbe5fb1d0b0fcb9c09e51948048e2e3283d2ab7b45b5ef38b49"))
	CM := unhex("68656c6c6f20776f726c64")
	VER := unhex("78797a7a79")
	SM := unhex("486f6c61204d756e646f")
	clientHS := unhex("9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2f8307a2bc1870b00b828bb74dbb8fd88e632a6375ab3bcd1ae706aaa8b6cdd1d252fe9ae91264c91d4ecb8501f79d0387e34ad8ca0f7c995184f7d11d5da4f463bebd9151fd3b47c180abc9e044d53565f04d82bbb3bebed3d06cea65db8be9c72b68cd461942088502f67")
	serverHS := unhex("4bf4814326fdab45ad5184f5518bd7fae25dc59374062698201a50a22954246d2fc5f8773ca824542bc6cf6f57c7c29bbf4e5476461ab130c5b18ab0a91276651202c3e1e87c0d32054c")
	keystream := unhex("9c19b631fd94ed86a817e01f6c80b0743a43f5faebd39cfaa8b00fa8bcc65c3bfeaa403d91acbd68a821bf6ee8504602b094a254392a07737d5662768c7a9fb1b2814bb34780eaee6e867c773e28c212ead563e98a1cd5d5b4576f5ee61c59bde025ff2851bb19b721421694f263818e3531e43a9e4e3e2c661e2ad547d8984caa28ebecd3e4525452299be26b9185a20a90ce1eac20a91f2832d731b54502b09749b5a2a2949292f8cfcbeffb790c7790ed935a9d251e7e336148ea83b063a5618fcff674a44581585fd22077ca0e52c59a24347a38d1a1ceebddbf238541f226b8f88d0fb9c07a1bcd2ea764bbbb5dacdaf5312a14c0b9e4f06309b0333b4a")

	c, err := newNtorV3WithKey(x, ID, B, CM, VER)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.ClientMessage(), clientHS) {
		t.Fatalf("client handshake\n got %x\nwant %x", c.ClientMessage(), clientHS)
	}
	ks, err := c.Complete(serverHS)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.ServerMessage, SM) {
		t.Fatalf("SM %x", c.ServerMessage)
	}
	got := make([]byte, len(keystream))
	io.ReadFull(ks, got)
	if !bytes.Equal(got, keystream) {
		t.Fatalf("keystream\n got %x\nwant %x", got, keystream)
	}
	bad := append([]byte(nil), serverHS...)
	bad[40] ^= 1
	c2, _ := newNtorV3WithKey(x, ID, B, CM, VER)
	if _, err := c2.Complete(bad); err != ErrNtorAuth {
		t.Fatal(err)
	}
	c3, _ := newNtorV3WithKey(x, ID, B, CM, []byte("other"))
	if _, err := c3.Complete(serverHS); err != ErrNtorAuth {
		t.Fatal("wrong verification string accepted")
	}
}

// BenchmarkNtorV3Client measures the client's side of ntor v3: the
// onionskin (two X25519 operations, SHAKE-256, AES-256, SHA3-256) and
// Complete, here with a reply that fails at AUTH after the third X25519
// and the hashing (the work of a successful Complete, minus the key
// stream).
func BenchmarkNtorV3Client(b *testing.B) {
	var id, bpub [32]byte
	id[0] = 1
	bpub[0] = 9
	reply := make([]byte, 64)
	reply[0] = 9
	b.ReportAllocs()
	for b.Loop() {
		c, err := NewNtorV3Client(nil, id, bpub, []byte{0}, []byte(NtorV3CircuitVerification))
		if err != nil {
			b.Fatal(err)
		}
		c.Complete(reply)
	}
}

// TestNtorV3ServerVector answers the prop 332 §X.2 client handshake with
// the vector's y and server message: the reply and key stream are the
// vector's, and the client message is decrypted.
func TestNtorV3ServerVector(t *testing.T) {
	b := [32]byte(unhex("4051daa5921cfa2a1c27b08451324919538e79e788a81b38cbed097a5dff454a"))
	ID := [32]byte(unhex("9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2"))
	y := unhex("4865a5b7689dafd978f529291c7171bc159be076b92186405d13220b80e2a053")
	clientHS := unhex("9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2f8307a2bc1870b00b828bb74dbb8fd88e632a6375ab3bcd1ae706aaa8b6cdd1d252fe9ae91264c91d4ecb8501f79d0387e34ad8ca0f7c995184f7d11d5da4f463bebd9151fd3b47c180abc9e044d53565f04d82bbb3bebed3d06cea65db8be9c72b68cd461942088502f67")
	serverHS := unhex("4bf4814326fdab45ad5184f5518bd7fae25dc59374062698201a50a22954246d2fc5f8773ca824542bc6cf6f57c7c29bbf4e5476461ab130c5b18ab0a91276651202c3e1e87c0d32054c")
	keystream := unhex("9c19b631fd94ed86a817e01f6c80b0743a43f5faebd39cfaa8b00fa8bcc65c3bfeaa403d91acbd68a821bf6ee8504602b094a254392a07737d5662768c7a9fb1b2814bb34780eaee6e867c773e28c212ead563e98a1cd5d5b4576f5ee61c59bde025ff2851bb19b721421694f263818e3531e43a9e4e3e2c661e2ad547d8984caa28ebecd3e4525452299be26b9185a20a90ce1eac20a91f2832d731b54502b09749b5a2a2949292f8cfcbeffb790c7790ed935a9d251e7e336148ea83b063a5618fcff674a44581585fd22077ca0e52c59a24347a38d1a1ceebddbf238541f226b8f88d0fb9c07a1bcd2ea764bbbb5dacdaf5312a14c0b9e4f06309b0333b4a")
	var gotCM []byte
	reply, ks, err := NtorV3ServerHandshake(bytes.NewReader(y), b, ID, clientHS, unhex("78797a7a79"), func(cm []byte) []byte {
		gotCM = cm
		return unhex("486f6c61204d756e646f")
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(gotCM) != "hello world" {
		t.Fatalf("client message %q", gotCM)
	}
	if !bytes.Equal(reply, serverHS) {
		t.Fatalf("server handshake\n got %x\nwant %x", reply, serverHS)
	}
	got := make([]byte, len(keystream))
	io.ReadFull(ks, got)
	if !bytes.Equal(got, keystream) {
		t.Fatal("key stream differs from the vector's")
	}
	bad := append([]byte(nil), clientHS...)
	bad[len(bad)-1] ^= 1
	if _, _, err := NtorV3ServerHandshake(bytes.NewReader(y), b, ID, bad, unhex("78797a7a79"), nil); err != ErrNtorAuth {
		t.Fatalf("bad MAC: %v", err)
	}
}
