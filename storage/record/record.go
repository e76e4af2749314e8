// Package record encodes the records the stores keep (acme.Account,
// acme.Order, acme.Authorization, acme.Certificate) in a compact binary
// form, used by both storage backends.
//
// Records were JSON until profiles showed encoding/json taking about 15%
// of the server's CPU per issuance: every update decodes and encodes at
// least once, the Redis store once more to check a held copy. JSON is also
// large where Redis keeps every record in memory: a certificate chain,
// already base64 as PEM, grew by a third again as a JSON []byte.
//
// # Format
//
// The first byte is the format version, 1 (never '{', so a record written
// as JSON by an earlier acmed still reads: Unmarshal hands anything that
// starts with '{' to encoding/json). The fields follow in declaration
// order, with no names or tags:
//
//	string, []byte    uvarint length, then the bytes
//	bool              one byte, 0 or 1
//	int               varint
//	time.Time         0 for the zero time, else 1, varint Unix seconds,
//	                  uvarint nanoseconds; decoded in UTC
//	[]T               uvarint count, then the elements
//	acme.Identifier   Type, Value
//	acme.Challenge    its fields, as a record's (version 2: then its
//	                  validation records, each URL, Hostname, Port,
//	                  AddressesResolved, AddressUsed and its DNS queries,
//	                  each Name, Type, Answers)
//	*acme.Problem     uvarint length, then its JSON; length 0 is nil
//
// Problems are rare (failures only) and nest, so they stay JSON. Adding,
// removing or reordering a field needs a new version byte, and the reader
// for the older versions kept so stored records still decode: version 2
// added the challenges' validation records to authorizations and the EAB
// key ID to accounts; version 3 the profile (and SPIFFE ID) to orders and
// the profile and notBefore to certificates; version 4 an order's replaces
// and EAB key name, a certificate's EAB key name, replacement and renewal
// window (issue 15's inventory); version 5 a certificate's issuer (issue
// 17's rotation). Each type is written in its newest version, but a
// certificate without an issuer in version 4, which an acmed from before
// rotation reads.
//
// The encoding is deterministic, which the Redis store relies on to tell
// whether a copy a caller holds is still what is stored by comparing
// bytes. Outside a problem's JSON it is also canonical: the decoder
// rejects what the encoder would not write (varints not in their shortest
// form, bools other than 0 and 1, trailing bytes). nil and empty slices
// encode alike and decode as nil.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/acmed/acmed/acme"
)

// version is the first byte of every binary record; versionRecords that
// of an authorization whose challenges carry their validation records.
const (
	version        = 1
	versionRecords = 2
	// versionProfiles is that of an order with its Profile and SPIFFEID,
	// and of a certificate with its Profile and NotBefore.
	versionProfiles = 3
	// versionRenewal adds an order's replaces and EAB key name, and a
	// certificate's EAB key name, replacement and renewal window.
	versionRenewal = 4
	// versionIssuer adds a certificate's issuer (a rotated CA has more
	// than one).
	versionIssuer = 5
)

// Marshal encodes v: the binary form for *acme.Account, *acme.Order,
// *acme.Authorization and *acme.Certificate, JSON for anything else.
func Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case *acme.Account:
		if v == nil {
			return nil, errNil(v)
		}
		return appendAccount(make([]byte, 0, accountSize(v)), v), nil
	case *acme.Order:
		if v == nil {
			return nil, errNil(v)
		}
		return appendOrder(make([]byte, 0, orderSize(v)), v)
	case *acme.Authorization:
		if v == nil {
			return nil, errNil(v)
		}
		return appendAuthorization(make([]byte, 0, authorizationSize(v)), v)
	case *acme.Certificate:
		if v == nil {
			return nil, errNil(v)
		}
		return appendCertificate(make([]byte, 0, certificateSize(v)), v), nil
	}
	return json.Marshal(v)
}

// Unmarshal decodes raw into v, which Marshal's switch names or which
// encoding/json can fill. It copies what it keeps, so raw may be reused
// (bbolt reclaims it when its transaction ends). For the record types v is
// replaced whole, and left as it was on error.
func Unmarshal(raw []byte, v any) error {
	switch v := v.(type) {
	case *acme.Account:
		return decode(raw, v, readAccount, version, versionRecords)
	case *acme.Order:
		return decode(raw, v, readOrder, version, versionProfiles, versionRenewal)
	case *acme.Authorization:
		return decode(raw, v, readAuthorization, version, versionRecords)
	case *acme.Certificate:
		return decode(raw, v, readCertificate, version, versionProfiles, versionRenewal, versionIssuer)
	}
	return json.Unmarshal(raw, v)
}

// Legacy reports whether raw was written as JSON by an acmed before this
// format. Such a record re-encodes to other bytes though it is the same
// record, so a store that compares bytes to see whether an update changed
// anything must compare with its re-encoding instead.
func Legacy(raw []byte) bool {
	return len(raw) > 0 && raw[0] == '{'
}

// Baseline is what an update compares its result with to tell whether it
// changed v, which was just decoded from raw: raw itself, or for a legacy
// record (or one of an older version) v's re-encoding, so an update that changes nothing writes
// nothing whichever form the record was stored in.
func Baseline(raw []byte, v any) ([]byte, error) {
	if !Legacy(raw) && raw[0] == newest(v) {
		return raw, nil
	}
	return Marshal(v) // a JSON record, or one of an older version
}

// newest is the version Marshal writes v in.
func newest(v any) byte {
	switch v := v.(type) {
	case *acme.Account, *acme.Authorization:
		return versionRecords
	case *acme.Order:
		return versionRenewal
	case *acme.Certificate:
		return certificateVersion(v)
	}
	return version
}

// decode reads raw, of one of the binary versions its type was written in,
// with read.
func decode[T any](raw []byte, v *T, read func(*reader) T, versions ...byte) error {
	if v == nil {
		return errNil(v)
	}
	switch {
	case len(raw) == 0:
		return fmt.Errorf("record: decode %s: empty", typeName(v))
	case Legacy(raw):
		var legacy T
		if err := json.Unmarshal(raw, &legacy); err != nil {
			return fmt.Errorf("record: decode %s from JSON: %w", typeName(v), err)
		}
		*v = legacy
		return nil
	case !slices.Contains(versions, raw[0]):
		return fmt.Errorf("record: decode %s: unknown format version %d", typeName(v), raw[0])
	}
	r := &reader{buf: raw[1:], src: string(raw[1:]), version: raw[0]}
	out := read(r)
	r.end()
	if r.err != nil {
		return fmt.Errorf("record: decode %s: %w", typeName(v), r.err)
	}
	*v = out
	return nil
}

func errNil[T any](v *T) error {
	return errors.New("record: nil *" + typeName(v))
}

func typeName[T any](*T) string {
	return reflect.TypeFor[T]().String()
}
