package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside a CA directory.
const (
	RootCertFile         = "root.pem"
	RootKeyFile          = "root.key"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate.key"
)

// ErrExists is returned (wrapped) by Init when the directory already holds a
// CA. Overwriting one would orphan every certificate it issued and every
// trust store that holds its root.
var ErrExists = errors.New("ca: a CA already exists")

// Local is the built-in CA: an issuing intermediate whose key is on local
// disk, under a root whose key Local never needs. It is immutable after Load
// and safe for concurrent use.
type Local struct {
	cfg             Config
	root            *x509.Certificate
	rootPEM         []byte
	intermediate    *x509.Certificate
	intermediatePEM []byte
	key             crypto.Signer
	name            string // CRLName(intermediate), fixed at load
}

// Init creates a root CA and an issuing intermediate in dir (created 0700 if
// missing): root.pem, root.key, intermediate.pem and intermediate.key, keys
// as PKCS#8 PEM with mode 0600. If a CA is already there it returns an error
// wrapping ErrExists and writes nothing.
//
// root.pem is written last, so Exists is true only once the CA is complete;
// if Init fails part way it removes what it wrote.
func Init(dir string, cfg Config) error {
	return initWith(dir, cfg, nil, nil)
}

// initWith is Init; a non-nil rootKey or intKey is that key held
// elsewhere (a token), and then its file is not written.
func initWith(dir string, cfg Config, rootKey, intKey crypto.Signer) error {
	rootPath := filepath.Join(dir, RootCertFile)
	if _, err := os.Lstat(rootPath); err == nil {
		return fmt.Errorf("%w: %s is present", ErrExists, rootPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ca: init %s: %w", dir, err)
	}

	files, err := newCAFiles(cfg, rootKey, intKey)
	if err != nil {
		return err
	}
	return writeCAFiles(dir, "init", files)
}

// writeCAFiles creates dir if needed (refusing one others may write to)
// and writes files into it in order, each only if absent; on a failure
// it removes the ones this call created, so a CA is there whole or not at
// all, and nobody else's files are touched (writeNew never replaces).
func writeCAFiles(dir, op string, files []caFile) error {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("ca: %s %s: %w", op, dir, err)
	}
	if err := checkDirMode(dir); err != nil {
		return err
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data, f.perm); err != nil {
			for _, w := range written {
				_ = os.Remove(w)
			}
			return err
		}
		written = append(written, path)
	}
	syncDir(dir)
	return nil
}

type caFile struct {
	name string
	data []byte
	perm fs.FileMode
}

// newCAFiles generates the CA in memory, in the order Init must write it.
// A nil rootKey or intKey means a new file key for the root or the
// intermediate.
func newCAFiles(cfg Config, rootKey, intKey crypto.Signer) ([]caFile, error) {
	r, now := cfg.rand(), cfg.now()

	var rootFileKey crypto.Signer
	if rootKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P384(), r)
		if err != nil {
			return nil, fmt.Errorf("ca: generate root key: %w", err)
		}
		rootKey, rootFileKey = k, k
	}
	rootTmpl, err := rootTemplate(r, rootKey.Public(), now)
	if err != nil {
		return nil, err
	}
	rootDER, err := x509.CreateCertificate(r, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign root: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, fmt.Errorf("ca: parse new root: %w", err)
	}

	var intFileKey crypto.Signer
	if intKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), r)
		if err != nil {
			return nil, fmt.Errorf("ca: generate intermediate key: %w", err)
		}
		intKey, intFileKey = k, k
	}
	intTmpl, err := intermediateTemplate(r, intKey.Public(), now)
	if err != nil {
		return nil, err
	}
	intDER, err := x509.CreateCertificate(r, intTmpl, root, intKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign intermediate: %w", err)
	}

	var files []caFile
	if rootFileKey != nil {
		rootKeyPEM, err := encodeKey(rootFileKey)
		if err != nil {
			return nil, err
		}
		files = append(files, caFile{RootKeyFile, rootKeyPEM, keyPerm})
	}
	if intFileKey != nil {
		intKeyPEM, err := encodeKey(intFileKey)
		if err != nil {
			return nil, err
		}
		files = append(files, caFile{IntermediateKeyFile, intKeyPEM, keyPerm})
	}
	return append(files,
		caFile{IntermediateCertFile, encodeCert(intDER), certPerm},
		caFile{RootCertFile, encodeCert(rootDER), certPerm},
	), nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Exists reports whether dir already holds a CA (root.pem present).
func Exists(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, RootCertFile))
	return err == nil
}

// Load reads the CA from dir and checks that the intermediate chains to the
// root, is a CA that may sign certificates, has not expired, and matches its
// key. root.key is not read: signing needs only the intermediate key, so the
// root key may be moved offline after Init. Load refuses a directory others
// may write to and a private key others may read, naming the fix.
func Load(dir string, cfg Config) (*Local, error) {
	keyPath := filepath.Join(dir, IntermediateKeyFile)
	if err := checkDirMode(dir); err != nil {
		return nil, err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	return LoadWithSigner(dir, cfg, key, keyPath)
}

// LoadWithSigner is Load with the intermediate's key supplied by the caller
// (an HSM's, through PKCS#11) instead of read from intermediate.key; keyName
// names it in errors. The same checks apply, the key matching the
// intermediate included.
func LoadWithSigner(dir string, cfg Config, key crypto.Signer, keyName string) (*Local, error) {
	rootPath := filepath.Join(dir, RootCertFile)
	intPath := filepath.Join(dir, IntermediateCertFile)

	if err := checkDirMode(dir); err != nil {
		return nil, err
	}
	// The root key is not needed (it may be offline), but one left here
	// must be as private as the intermediate's.
	if rootKey := filepath.Join(dir, RootKeyFile); fileExists(rootKey) {
		if err := checkKeyMode(rootKey); err != nil {
			return nil, err
		}
	}
	root, rootPEM, err := readCert(rootPath)
	if err != nil {
		return nil, err
	}
	intermediate, intPEM, err := readCert(intPath)
	if err != nil {
		return nil, err
	}
	if err := intermediate.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("ca: %s is not signed by %s: %w", intPath, rootPath, err)
	}
	if !intermediate.IsCA || intermediate.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("ca: %s is not a CA certificate allowed to sign certificates", intPath)
	}
	if now := cfg.now(); !cfg.AllowExpired && now.After(intermediate.NotAfter) {
		return nil, fmt.Errorf("ca: %s expired at %s", intPath, intermediate.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(intermediate.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match %s", keyName, intPath)
	}
	return &Local{
		cfg:             cfg,
		root:            root,
		rootPEM:         rootPEM,
		intermediate:    intermediate,
		intermediatePEM: intPEM,
		key:             key,
		name:            CRLName(intermediate),
	}, nil
}

// RootPEM returns the root certificate in PEM. The slice is the caller's.
func (l *Local) RootPEM() []byte { return bytes.Clone(l.rootPEM) }

// Root returns the parsed root. It is shared; callers must not modify it.
func (l *Local) Root() *x509.Certificate { return l.root }

// Intermediate returns the parsed issuing intermediate. It is shared;
// callers must not modify it.
func (l *Local) Intermediate() *x509.Certificate { return l.intermediate }
