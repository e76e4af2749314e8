package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ImportFiles names the PEM files of an existing CA that Import installs.
type ImportFiles struct {
	Root         string // the root certificate, self-signed
	Intermediate string // the issuing intermediate, signed by Root
	Key          string // the intermediate's private key: PKCS#8, SEC1 or PKCS#1 PEM
}

// Import installs an organisation's existing root and intermediate (and the
// intermediate's key) into dir, in the files and modes Init writes, so Load
// and everything built on it (the store's CA identity claim included) treat
// it like a CA acmed made. root.key is not written: the root key stays with
// its owner, which Load already allows.
//
// Everything is checked before anything is written: the key matches the
// intermediate, the intermediate may sign certificates and verifies to the
// root (the only root), and the root is a self-signed CA. A directory that
// already holds this very CA gives an error wrapping ErrExists; one holding
// another CA gives an error that does not, so --exist-ok cannot hide it.
func Import(dir string, src ImportFiles, cfg Config) error {
	root, rootPEM, err := readImportCert(src.Root)
	if err != nil {
		return err
	}
	intermediate, intPEM, err := readImportCert(src.Intermediate)
	if err != nil {
		return err
	}
	key, err := readImportKey(src.Key)
	if err != nil {
		return err
	}
	if err := checkImport(src, root, intermediate, key, cfg); err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	files := []caFile{
		{IntermediateKeyFile, keyPEM, keyPerm},
		{IntermediateCertFile, intPEM, certPerm},
		{RootCertFile, rootPEM, certPerm}, // last: Exists is true only once the CA is complete
	}

	rootPath := filepath.Join(dir, RootCertFile)
	if _, err := os.Lstat(rootPath); err == nil {
		return sameCA(dir, files)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ca: import into %s: %w", dir, err)
	}
	return writeCAFiles(dir, "import into", files)
}

// checkImport refuses a CA Load would refuse, or that would sign
// certificates no client chains to the root, naming the file at fault.
func checkImport(src ImportFiles, root, intermediate *x509.Certificate, key crypto.Signer, cfg Config) error {
	if !root.BasicConstraintsValid || !root.IsCA {
		return fmt.Errorf("ca: import: root %s is not a CA certificate (BasicConstraints CA is not true)", src.Root)
	}
	if !bytes.Equal(root.RawSubject, root.RawIssuer) || root.CheckSignatureFrom(root) != nil {
		return fmt.Errorf("ca: import: root %s is not self-signed", src.Root)
	}
	if !intermediate.BasicConstraintsValid || !intermediate.IsCA {
		return fmt.Errorf("ca: import: intermediate %s cannot sign certificates: BasicConstraints CA is not true", src.Intermediate)
	}
	if intermediate.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("ca: import: intermediate %s cannot sign certificates: its KeyUsage lacks certSign", src.Intermediate)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(intermediate.PublicKey) {
		return fmt.Errorf("ca: import: key %s does not match the public key of intermediate %s", src.Key, src.Intermediate)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err := intermediate.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: cfg.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("ca: import: intermediate %s does not verify to root %s: %w", src.Intermediate, src.Root, err)
	}
	return nil
}

// sameCA reports whether dir already holds exactly the CA being imported:
// ErrExists if so (--exist-ok accepts it), a refusal naming the first
// differing file if not.
func sameCA(dir string, files []caFile) error {
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		have, err := readFile(path)
		if err != nil {
			return fmt.Errorf("ca: import: --data %s already holds a CA: %w", dir, err)
		}
		same := bytes.Equal(have, f.data)
		if f.name == IntermediateKeyFile {
			// Compare the keys, not the PEM bytes: the same key may be
			// spelled differently.
			k, err := readKey(path)
			same = err == nil && bytes.Equal(mustPKCS8(k), pemBody(f.data))
		}
		if !same {
			return fmt.Errorf("ca: import: --data %s already holds a different CA (%s differs); import into an empty directory", dir, path)
		}
	}
	return fmt.Errorf("%w: %s holds the imported CA already", ErrExists, dir)
}

func mustPKCS8(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil
	}
	return der
}

func pemBody(b []byte) []byte {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil
	}
	return block.Bytes
}

// readImportCert reads the first CERTIFICATE block of path; the errors
// name the file and what is wrong with it.
func readImportCert(path string) (*x509.Certificate, []byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, nil, fmt.Errorf("ca: parse %s: not a PEM file with a CERTIFICATE block", path)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("ca: parse %s: %w", path, err)
		}
		return cert, encodeCert(block.Bytes), nil
	}
}

// readImportKey reads an ECDSA or RSA private key in PKCS#8 ("PRIVATE
// KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM. The
// "EC PARAMETERS" block openssl ecparam -genkey writes first is skipped.
func readImportKey(path string) (crypto.Signer, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseImportKey(b, path)
}

// parseImportKey is readImportKey on the file's contents b; path names it
// in errors.
func parseImportKey(b []byte, path string) (crypto.Signer, error) {
	var err error
	var block *pem.Block
	for rest := b; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("ca: parse %s: not a PEM file with a PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block", path)
		}
		if block.Type != "EC PARAMETERS" {
			break
		}
	}
	var k any
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("ca: parse %s: the key is encrypted; decrypt it first (openssl pkey -in %s -out FILE)", path, path)
	default:
		return nil, fmt.Errorf("ca: parse %s: PEM block %q is not a private key (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: parse %s: %w", path, err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("ca: parse %s: key type %T is not supported (want ECDSA or RSA)", path, k)
	}
}
