package wttest

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// release is where wt-host's releases are: WT_DOWNLOAD_URL (default the
// GitHub releases) and WT_VERSION (default "latest"), laid out as
// install.sh reads them.
func release() (base, version string) {
	base = strings.TrimRight(os.Getenv("WT_DOWNLOAD_URL"), "/")
	if base == "" {
		base = "https://github.com/wondertwin/wt/releases"
	}
	version = strings.TrimPrefix(os.Getenv("WT_VERSION"), "v")
	if version == "" || version == "latest" {
		return base + "/latest/download", "latest"
	}
	return base + "/download/v" + version, version
}

// download fetches the release's checksums.txt, then the wt-host archive
// for this OS and CPU and every twin it lists, each checked against its
// sha256 before it is used, into dir (reused when already there and
// matching). Returns the binary's path and the twins' folder.
func download(url, dir string) (binary, twins string, err error) {
	sums, err := fetch(url + "/checksums.txt")
	if err != nil {
		return "", "", err
	}
	osName, arch := runtime.GOOS, runtime.GOARCH
	archiveName := regexp.MustCompile(`^wt-host_.*_` + osName + `_` + arch + `\.tar\.gz$`)
	var archive, archiveSum string
	wanted := map[string]string{}
	lines := bufio.NewScanner(strings.NewReader(string(sums)))
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 2 {
			continue
		}
		switch {
		case archiveName.MatchString(fields[1]):
			archive, archiveSum = fields[1], fields[0]
		// `twins/x.wasm` (cargo xtask dist) or `x.wasm` (the GitHub release).
		case strings.HasSuffix(fields[1], ".wasm"):
			wanted[fields[1]] = fields[0]
		}
	}
	if archive == "" {
		return "", "", fmt.Errorf("wttest: no wt-host archive for %s/%s in %s/checksums.txt", osName, arch, url)
	}
	if err := os.MkdirAll(filepath.Join(dir, "twins"), 0o755); err != nil {
		return "", "", err
	}
	binary = filepath.Join(dir, "wt-host")
	if !matches(binary+".sha256", archiveSum) {
		data, err := fetchChecked(url+"/"+archive, archiveSum)
		if err != nil {
			return "", "", err
		}
		if err := extract(data, "wt-host", binary); err != nil {
			return "", "", fmt.Errorf("wttest: %s: %w", archive, err)
		}
		if err := os.WriteFile(binary+".sha256", []byte(archiveSum), 0o644); err != nil {
			return "", "", err
		}
	}
	for name, sum := range wanted {
		path := filepath.Join(dir, "twins", pathpkg.Base(name))
		if fileSum(path) == sum {
			continue
		}
		data, err := fetchChecked(url+"/"+name, sum)
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return "", "", err
		}
	}
	return binary, filepath.Join(dir, "twins"), nil
}

func fetch(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("wttest: downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("wttest: downloading %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// fetchChecked downloads url and refuses it unless its sha256 is sum.
func fetchChecked(url, sum string) ([]byte, error) {
	data, err := fetch(url)
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("wttest: %s has sha256 %s, but checksums.txt says %s: refusing it", url, hex.EncodeToString(got[:]), sum)
	}
	return data, nil
}

func matches(stamp, sum string) bool {
	data, err := os.ReadFile(stamp)
	return err == nil && string(data) == sum
}

func fileSum(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// extract writes the archive member `name` to `to`, executable.
func extract(archive []byte, name, to string) error {
	gz, err := gzip.NewReader(strings.NewReader(string(archive)))
	if err != nil {
		return err
	}
	entries := tar.NewReader(gz)
	for {
		header, err := entries.Next()
		if err == io.EOF {
			return fmt.Errorf("no %s inside", name)
		}
		if err != nil {
			return err
		}
		if filepath.Base(header.Name) != name || header.Typeflag != tar.TypeReg {
			continue
		}
		tmp := to + ".partial"
		out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, entries); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, to)
	}
}
