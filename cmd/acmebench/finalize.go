package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The finalize request is signed here rather than sent with the acme
// package's CreateOrderCert, because that method waits for a processing
// order with WaitOrder, which sleeps Retry-After (at least a second)
// between polls and would hide the server's speed. The rest of the flow
// uses the acme package.

// maxResponse bounds what is read of a finalize response; an order is a
// few hundred bytes.
const maxResponse = 1 << 20

// badNonceRetries is how often finalize is resent after a badNonce, each
// time with the nonce the rejection carried (RFC 8555 section 6.5).
const badNonceRetries = 2

const badNonceType = "urn:ietf:params:acme:error:badNonce"

// wireOrder is the part of an order object (RFC 8555 section 7.1.3) the
// benchmark reads.
type wireOrder struct {
	Status      string       `json:"status"`
	Certificate string       `json:"certificate"`
	Error       *wireProblem `json:"error"`
}

// wireProblem is an RFC 7807 problem document.
type wireProblem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	Status int    `json:"status"`
}

func (p *wireProblem) Error() string {
	return fmt.Sprintf("%d %s: %s", p.Status, p.Type, p.Detail)
}

// finalize submits csr (DER) to the order's finalize URL and returns the
// order the server answers with.
func (w *worker) finalize(ctx context.Context, finalizeURL string, csr []byte) (*wireOrder, error) {
	payload, err := json.Marshal(struct {
		CSR string `json:"csr"`
	}{base64.RawURLEncoding.EncodeToString(csr)})
	if err != nil {
		return nil, err
	}
	var o *wireOrder
	for range 1 + badNonceRetries {
		o, err = w.postFinalize(ctx, finalizeURL, payload)
		var p *wireProblem
		if !errors.As(err, &p) || p.Type != badNonceType {
			break
		}
	}
	return o, err
}

func (w *worker) postFinalize(ctx context.Context, url string, payload []byte) (*wireOrder, error) {
	nonce := w.nonce
	w.nonce = ""
	if nonce == "" {
		var err error
		if nonce, err = w.fetchNonce(ctx); err != nil {
			return nil, err
		}
	}
	body, err := w.signJWS(url, nonce, payload)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/jose+json")
	req.Header.Set("User-Agent", "acmebench")
	res, err := w.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	// Every response, errors too, carries the nonce for the next finalize.
	w.nonce = res.Header.Get("Replay-Nonce")
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		p := &wireProblem{Status: res.StatusCode}
		if json.Unmarshal(data, p) != nil || p.Type == "" {
			return nil, fmt.Errorf("HTTP %d: %.200q", res.StatusCode, data)
		}
		p.Status = res.StatusCode
		return nil, p
	}
	o := &wireOrder{}
	if err := json.Unmarshal(data, o); err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	return o, nil
}

// fetchNonce asks the new-nonce resource (RFC 8555 section 7.2).
func (w *worker) fetchNonce(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, w.nonceAt, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "acmebench")
	res, err := w.hc.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	nonce := res.Header.Get("Replay-Nonce")
	if nonce == "" {
		return "", fmt.Errorf("new-nonce: HTTP %d without Replay-Nonce", res.StatusCode)
	}
	return nonce, nil
}

// signJWS is the flattened JWS of RFC 8555 section 6.2 with the account
// URL as kid, signed ES256 (RFC 7518 section 3.4: r and s, 32 bytes each).
func (w *worker) signJWS(url, nonce string, payload []byte) ([]byte, error) {
	protected, err := json.Marshal(struct {
		Alg   string `json:"alg"`
		Kid   string `json:"kid"`
		Nonce string `json:"nonce"`
		URL   string `json:"url"`
	}{"ES256", w.kid, nonce, url})
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	prot, pay := enc.EncodeToString(protected), enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(prot + "." + pay))
	r, s, err := ecdsa.Sign(rand.Reader, w.key, digest[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return json.Marshal(struct {
		Protected string `json:"protected"`
		Payload   string `json:"payload"`
		Signature string `json:"signature"`
	}{prot, pay, enc.EncodeToString(sig)})
}
