package wttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A release as install.sh reads it: an archive per platform, the twins,
// and checksums.txt over them.
func fakeRelease(t *testing.T, tamper bool) *httptest.Server {
	var archive bytes.Buffer
	gz := gzip.NewWriter(&archive)
	tw := tar.NewWriter(gz)
	binary := []byte("#!/bin/sh\necho wt-host\n")
	_ = tw.WriteHeader(&tar.Header{Name: "wt-host", Mode: 0o755, Size: int64(len(binary)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(binary)
	_ = tw.Close()
	_ = gz.Close()
	twin := []byte("\x00asm-not-really")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	name := fmt.Sprintf("wt-host_0.1.0_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	files := map[string][]byte{name: archive.Bytes(), "twins/stripe.wasm": twin, "clerk.wasm": twin}
	archiveSum := sum(archive.Bytes())
	if tamper {
		archiveSum = strings.Repeat("0", 64)
	}
	checksums := fmt.Sprintf("%s  %s\n%s  twins/stripe.wasm\n%s  clerk.wasm\n%s  wt-host_0.1.0_plan9_mips.tar.gz\n",
		archiveSum, name, sum(twin), sum(twin), strings.Repeat("1", 64))
	files["checksums.txt"] = []byte(checksums)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[strings.TrimPrefix(r.URL.Path, "/download/v0.1.0/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
}

func TestDownloadChecksEverythingAgainstChecksums(t *testing.T) {
	server := fakeRelease(t, false)
	defer server.Close()
	dir := t.TempDir()
	binary, twins, err := download(server.URL+"/download/v0.1.0", dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(binary)
	if err != nil || info.Mode()&0o100 == 0 {
		t.Fatalf("the binary is not there, executable: %v %v", info, err)
	}
	for _, twin := range []string{"stripe.wasm", "clerk.wasm"} {
		if _, err := os.Stat(filepath.Join(twins, twin)); err != nil {
			t.Fatal(err)
		}
	}
	// A second call reuses what is there and still checks it.
	if _, _, err := download(server.URL+"/download/v0.1.0", dir); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadRefusesBytesThatDoNotMatch(t *testing.T) {
	server := fakeRelease(t, true)
	defer server.Close()
	dir := t.TempDir()
	_, _, err := download(server.URL+"/download/v0.1.0", dir)
	if err == nil || !strings.Contains(err.Error(), "refusing it") {
		t.Fatalf("expected a refusal, got %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "wt-host")); statErr == nil {
		t.Fatal("a refused binary was written")
	}
}

func TestReleaseURLsFollowInstallSh(t *testing.T) {
	t.Setenv("WT_DOWNLOAD_URL", "http://mirror.test/releases/")
	t.Setenv("WT_VERSION", "v0.2.0")
	if url, version := release(); url != "http://mirror.test/releases/download/v0.2.0" || version != "0.2.0" {
		t.Fatalf("%s %s", url, version)
	}
	t.Setenv("WT_VERSION", "")
	if url, _ := release(); url != "http://mirror.test/releases/latest/download" {
		t.Fatal(url)
	}
}
