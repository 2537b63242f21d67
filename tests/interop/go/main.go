// Command interop checks certificates made by uca with Go's standard library
// only: crypto/x509 chain verification and crypto/tls mutual TLS. It is
// built and run by tests/interop.rs; every result is one line starting with
// OK or FAIL.
//
//	interop verify JOBS
//	    JOBS holds one check per line, tab-separated:
//	    ID CA CHAIN KEY USAGE NAME [HELPER_CHAIN HELPER_KEY]
//	    USAGE is server or client, NAME is "-" for none; KEY and the helper
//	    fields are not used here. CHAIN is the leaf first, then
//	    intermediates. Prints "OK ID ..." or "FAIL ID error" per line.
//	interop crl CA CRL [CERT...]
//	    Parses CRL (DER or PEM) with x509.ParseRevocationList, checks its
//	    signature with CheckSignatureFrom(CA), prints "OK crl NUMBER", then
//	    "REVOKED SERIAL" or "GOOD SERIAL" for each CERT.
//	interop server --ca CA --cert CHAIN --key KEY [--tls 1.2|1.3] [--timeout S]
//	    Listens on 127.0.0.1 (a free port, printed as "LISTENING PORT"),
//	    requires and verifies a client certificate (clientAuth) against CA,
//	    reads one line, answers "pong: LINE" and exits.
//	interop client --ca CA --cert CHAIN --key KEY --port P --name NAME [--tls ...] [--timeout S]
//	    Connects, verifies the server for NAME (serverAuth) against CA,
//	    presents CHAIN/KEY (unless --cert is "-"), sends one line and
//	    prints the answer.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificates", path)
	}
	return out, nil
}

func pool(path string) (*x509.CertPool, error) {
	certs, err := readCerts(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p, nil
}

func describe(chain []*x509.Certificate) string {
	var names []string
	for _, c := range chain {
		names = append(names, c.Subject.String())
	}
	return strings.Join(names, " <- ")
}

func verifyOne(ca, chainPath, usage, name string) (string, error) {
	roots, err := pool(ca)
	if err != nil {
		return "", err
	}
	certs, err := readCerts(chainPath)
	if err != nil {
		return "", err
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter}
	switch usage {
	case "server":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case "client":
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return "", fmt.Errorf("unknown usage %q", usage)
	}
	if name != "-" {
		opts.DNSName = name
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return "", err
	}
	return "chain: " + describe(chains[0]), nil
}

func verifyJobs(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 6 {
			return fmt.Errorf("bad job line %q", line)
		}
		detail, err := verifyOne(fields[1], fields[2], fields[4], fields[5])
		if err != nil {
			fmt.Printf("FAIL %s %s\n", fields[0], oneLine(err.Error()))
		} else {
			fmt.Printf("OK %s %s\n", fields[0], detail)
		}
	}
	return sc.Err()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

type endpoint struct {
	ca, cert, key, name, tlsVersion string
	port                            int
	timeout                         time.Duration
}

func (e *endpoint) config() (*tls.Config, error) {
	roots, err := pool(e.ca)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch e.tlsVersion {
	case "", "any":
	case "1.2":
		cfg.MaxVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("unknown --tls %q", e.tlsVersion)
	}
	if e.cert != "-" {
		pair, err := tls.LoadX509KeyPair(e.cert, e.key)
		if err != nil {
			return nil, fmt.Errorf("load %s / %s: %w", e.cert, e.key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	cfg.RootCAs = roots
	cfg.ClientCAs = roots
	return cfg, nil
}

func peerName(st tls.ConnectionState) string {
	if len(st.PeerCertificates) == 0 {
		return "(none)"
	}
	return st.PeerCertificates[0].Subject.String()
}

func serve(e *endpoint) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Printf("LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	deadline := time.Now().Add(e.timeout)
	ln.(*net.TCPListener).SetDeadline(deadline)
	raw, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	raw.SetDeadline(deadline)
	conn := tls.Server(raw, cfg)
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if _, err := conn.Write([]byte("pong: " + line + "\n")); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	st := conn.ConnectionState()
	fmt.Printf("OK server: peer=%s chain=%d protocol=%s got=%s\n",
		peerName(st), len(st.PeerCertificates), versionName(st.Version), line)
	return nil
}

func connect(e *endpoint) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	cfg.ServerName = e.name
	dialer := &net.Dialer{Timeout: e.timeout}
	raw, err := dialer.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port)))
	if err != nil {
		return err
	}
	raw.SetDeadline(time.Now().Add(e.timeout))
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if _, err := conn.Write([]byte("ping from go\n")); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	st := conn.ConnectionState()
	fmt.Printf("OK client: peer=%s chain=%d protocol=%s reply=%s\n",
		peerName(st), len(st.PeerCertificates), versionName(st.Version), strings.TrimRight(reply, "\r\n"))
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Println("FAIL usage: interop verify JOBS | server ... | client ...")
		os.Exit(2)
	}
	mode := os.Args[1]
	if mode == "verify" {
		if len(os.Args) != 3 {
			fmt.Println("FAIL usage: interop verify JOBS")
			os.Exit(2)
		}
		if err := verifyJobs(os.Args[2]); err != nil {
			fmt.Printf("FAIL verify: %s\n", oneLine(err.Error()))
			os.Exit(1)
		}
		return
	}
	if mode == "crl" {
		if len(os.Args) < 4 {
			fmt.Println("FAIL usage: interop crl CA CRL [CERT...]")
			os.Exit(2)
		}
		if err := checkCRL(os.Args[2], os.Args[3], os.Args[4:]); err != nil {
			fmt.Printf("FAIL crl: %s\n", oneLine(err.Error()))
			os.Exit(1)
		}
		return
	}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	e := &endpoint{}
	fs.StringVar(&e.ca, "ca", "", "trusted CA certificates (PEM)")
	fs.StringVar(&e.cert, "cert", "", "own certificate chain (PEM), or - for none")
	fs.StringVar(&e.key, "key", "", "own private key (PEM)")
	fs.StringVar(&e.name, "name", "", "server name to verify (client)")
	fs.StringVar(&e.tlsVersion, "tls", "any", "1.2, 1.3 or any")
	fs.IntVar(&e.port, "port", 0, "server port (client)")
	secs := fs.Int("timeout", 15, "seconds before giving up")
	if err := fs.Parse(os.Args[2:]); err != nil {
		fmt.Printf("FAIL %s: %s\n", mode, oneLine(err.Error()))
		os.Exit(2)
	}
	e.timeout = time.Duration(*secs) * time.Second
	var err error
	switch mode {
	case "server":
		err = serve(e)
	case "client":
		if e.port == 0 || e.name == "" {
			err = errors.New("client needs --port and --name")
		} else {
			err = connect(e)
		}
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Printf("FAIL %s: %s\n", mode, oneLine(err.Error()))
		os.Exit(1)
	}
}

// checkCRL verifies crlPath's signature with the first certificate of
// caPath and reports, for each certificate, whether the CRL revokes it.
func checkCRL(caPath, crlPath string, certPaths []string) error {
	cas, err := readCerts(caPath)
	if err != nil || len(cas) == 0 {
		return fmt.Errorf("read %s: %v", caPath, err)
	}
	data, err := os.ReadFile(crlPath)
	if err != nil {
		return err
	}
	if block, _ := pem.Decode(data); block != nil {
		data = block.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return fmt.Errorf("parse %s: %v", crlPath, err)
	}
	if err := crl.CheckSignatureFrom(cas[0]); err != nil {
		return fmt.Errorf("signature of %s: %v", crlPath, err)
	}
	fmt.Printf("OK crl %s\n", crl.Number)
	for _, p := range certPaths {
		certs, err := readCerts(p)
		if err != nil || len(certs) == 0 {
			return fmt.Errorf("read %s: %v", p, err)
		}
		status := "GOOD"
		for _, r := range crl.RevokedCertificates {
			if r.SerialNumber.Cmp(certs[0].SerialNumber) == 0 {
				status = "REVOKED"
			}
		}
		fmt.Printf("%s %x\n", status, certs[0].SerialNumber)
	}
	return nil
}
