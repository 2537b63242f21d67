// Checks certificates made by uca with Java 17's own PKIX and JSSE, no
// libraries. Built and run by tests/interop.rs; every result is one line
// starting with OK or FAIL.
//
//   java Interop verify JOBS
//       JOBS holds one check per line, tab-separated:
//       ID CA CHAIN KEY USAGE NAME [HELPER_CHAIN HELPER_KEY]
//       Each chain (leaf first, then intermediates) is validated twice:
//       CertPathValidator "PKIX" with a TrustAnchor from CA, revocation
//       disabled and the leaf required to carry the TLS extended key usage;
//       then the PKIX X509TrustManager's checkServerTrusted /
//       checkClientTrusted, which adds the key usage and EKU checks JSSE
//       applies in a TLS handshake. NAME is not checked here (JSSE checks
//       host names during the handshake). KEY and helpers are not used.
//   java Interop server --ca CA --cert CHAIN --key KEY [--tls 1.2|1.3] [--timeout S]
//       SSLServerSocket on 127.0.0.1 (a free port, printed as
//       "LISTENING PORT") with needClientAuth; reads one line, answers
//       "pong: LINE" and exits.
//   java Interop client --ca CA --cert CHAIN --key KEY --port P --name NAME [--tls ...] [--timeout S]
//       SSLSocket with endpoint identification "HTTPS" for NAME; presents
//       CHAIN/KEY (unless --cert is "-"), sends one line, prints the answer.
//
// Keys are PEM PKCS#8 ("PRIVATE KEY"), loaded with KeyFactory "EC", "RSA"
// or "Ed25519" according to the certificate's public key.

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

public class Interop {
    static final String EKU_SERVER = "1.3.6.1.5.5.7.3.1";
    static final String EKU_CLIENT = "1.3.6.1.5.5.7.3.2";
    static final char[] STORE_PASS = "interop".toCharArray();

    public static void main(String[] args) {
        if (args.length < 1) {
            System.out.println("FAIL usage: Interop verify JOBS | server ... | client ...");
            System.exit(2);
        }
        String mode = args[0];
        try {
            if (mode.equals("verify")) {
                if (args.length != 2) {
                    throw new IllegalArgumentException("usage: Interop verify JOBS");
                }
                verifyJobs(args[1]);
                return;
            }
            Map<String, String> opts = options(args);
            if (mode.equals("server")) {
                serve(opts);
            } else if (mode.equals("client")) {
                connect(opts);
            } else {
                throw new IllegalArgumentException("unknown mode " + mode);
            }
        } catch (Exception e) {
            System.out.println("FAIL " + mode + ": " + describe(e));
            System.out.flush();
            System.exit(1);
        }
    }

    static Map<String, String> options(String[] args) {
        Map<String, String> m = new HashMap<>();
        m.put("tls", "any");
        m.put("timeout", "15");
        for (int i = 1; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("bad argument " + args[i]);
            }
            m.put(args[i].substring(2), args[i + 1]);
        }
        return m;
    }

    /** The exception and its causes, on one line. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            String part = t.getClass().getName() + ": " + t.getMessage();
            if (sb.indexOf(part) >= 0) {
                break;
            }
            if (sb.length() > 0) {
                sb.append(" <- caused by ");
            }
            sb.append(part);
            if (t.getCause() == t) {
                break;
            }
        }
        return sb.toString().replaceAll("\\s+", " ");
    }

    static List<X509Certificate> readCerts(String path) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<X509Certificate> out = new ArrayList<>();
        try (InputStream in = new FileInputStream(path)) {
            for (Certificate c : cf.generateCertificates(in)) {
                out.add((X509Certificate) c);
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(path + ": no certificates");
        }
        return out;
    }

    static PrivateKey readKey(String path, X509Certificate cert) throws Exception {
        String pem = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.US_ASCII);
        String begin = "-----BEGIN PRIVATE KEY-----";
        String end = "-----END PRIVATE KEY-----";
        int b = pem.indexOf(begin);
        int e = pem.indexOf(end);
        if (b < 0 || e < b) {
            throw new IllegalArgumentException(path + ": no PKCS#8 PRIVATE KEY block");
        }
        byte[] der = Base64.getMimeDecoder().decode(pem.substring(b + begin.length(), e));
        String alg = cert.getPublicKey().getAlgorithm();
        String factory;
        switch (alg) {
            case "EC":
            case "RSA":
                factory = alg;
                break;
            case "EdDSA":
            case "Ed25519":
                factory = "Ed25519";
                break;
            default:
                throw new IllegalArgumentException("unexpected public key algorithm " + alg);
        }
        return KeyFactory.getInstance(factory).generatePrivate(new PKCS8EncodedKeySpec(der));
    }

    static KeyStore trustStore(List<X509Certificate> cas) throws Exception {
        KeyStore ts = KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        int i = 0;
        for (X509Certificate c : cas) {
            ts.setCertificateEntry("ca" + i++, c);
        }
        return ts;
    }

    static X509TrustManager trustManager(List<X509Certificate> cas) throws Exception {
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trustStore(cas));
        for (TrustManager tm : tmf.getTrustManagers()) {
            if (tm instanceof X509TrustManager) {
                return (X509TrustManager) tm;
            }
        }
        throw new IllegalStateException("no X509TrustManager");
    }

    static String subject(X509Certificate c) {
        return c.getSubjectX500Principal().getName();
    }

    static String chainText(List<? extends Certificate> chain) {
        StringBuilder sb = new StringBuilder();
        for (Certificate c : chain) {
            if (sb.length() > 0) {
                sb.append(" <- ");
            }
            sb.append(subject((X509Certificate) c));
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------
    // Chain verification

    static void verifyJobs(String path) throws Exception {
        for (String line : Files.readAllLines(Paths.get(path))) {
            if (line.trim().isEmpty()) {
                continue;
            }
            String[] f = line.split("\t");
            if (f.length < 6) {
                throw new IllegalArgumentException("bad job line " + line);
            }
            try {
                System.out.println("OK " + f[0] + " " + verifyOne(f[1], f[2], f[4]));
            } catch (Exception e) {
                System.out.println("FAIL " + f[0] + " " + (e.getClass() == Exception.class
                        ? e.getMessage() : describe(e)));
            }
        }
    }

    static String verifyOne(String caPath, String chainPath, String usage) throws Exception {
        List<X509Certificate> cas = readCerts(caPath);
        List<X509Certificate> chain = readCerts(chainPath);
        boolean server;
        if (usage.equals("server")) {
            server = true;
        } else if (usage.equals("client")) {
            server = false;
        } else {
            throw new IllegalArgumentException("unknown usage " + usage);
        }
        List<String> failures = new ArrayList<>();

        // 1. CertPathValidator PKIX. The path excludes the trust anchor.
        Set<TrustAnchor> anchors = new HashSet<>();
        for (X509Certificate ca : cas) {
            anchors.add(new TrustAnchor(ca, null));
        }
        List<X509Certificate> path = new ArrayList<>();
        for (X509Certificate c : chain) {
            if (!cas.contains(c)) {
                path.add(c);
            }
        }
        try {
            CertPath certPath = CertificateFactory.getInstance("X.509").generateCertPath(path);
            PKIXParameters params = new PKIXParameters(anchors);
            params.setRevocationEnabled(false);
            X509CertSelector target = new X509CertSelector();
            Set<String> eku = new HashSet<>();
            eku.add(server ? EKU_SERVER : EKU_CLIENT);
            target.setExtendedKeyUsage(eku);
            params.setTargetCertConstraints(target);
            CertPathValidator.getInstance("PKIX").validate(certPath, params);
        } catch (Exception e) {
            failures.add("pkix: " + describe(e));
        }

        // 2. What JSSE's trust manager checks for a TLS peer (PKIX again,
        // plus keyUsage and extendedKeyUsage for the TLS role). The auth
        // types: TLS 1.3 ("UNKNOWN"), and TLS 1.2's ECDHE and, for RSA,
        // RSA key transport (which needs keyEncipherment).
        X509TrustManager tm = trustManager(cas);
        X509Certificate[] arr = chain.toArray(new X509Certificate[0]);
        String alg = chain.get(0).getPublicKey().getAlgorithm();
        List<String> authTypes = new ArrayList<>();
        authTypes.add("UNKNOWN");
        if (alg.equals("RSA")) {
            authTypes.add("ECDHE_RSA");
            authTypes.add("RSA");
        } else {
            authTypes.add("ECDHE_ECDSA");
        }
        for (String authType : authTypes) {
            try {
                if (server) {
                    tm.checkServerTrusted(arr, authType);
                } else {
                    tm.checkClientTrusted(arr, authType);
                }
            } catch (Exception e) {
                failures.add("jsse " + (server ? "checkServerTrusted" : "checkClientTrusted")
                        + "(" + authType + "): " + describe(e));
            }
        }
        if (!failures.isEmpty()) {
            throw new Exception(String.join("; ", failures));
        }
        List<X509Certificate> full = new ArrayList<>(path);
        full.add(findIssuer(cas, path.get(path.size() - 1)));
        return "chain: " + chainText(full) + " (pkix, jsse authTypes " + String.join(",", authTypes) + ")";
    }

    static X509Certificate findIssuer(List<X509Certificate> cas, X509Certificate c) {
        for (X509Certificate ca : cas) {
            if (ca.getSubjectX500Principal().equals(c.getIssuerX500Principal())) {
                return ca;
            }
        }
        return c;
    }

    // ------------------------------------------------------------------
    // Mutual TLS

    static SSLContext context(Map<String, String> o) throws Exception {
        List<X509Certificate> cas = readCerts(need(o, "ca"));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trustStore(cas));
        KeyManagerFactory kmf = null;
        String cert = need(o, "cert");
        if (!cert.equals("-")) {
            List<X509Certificate> chain = readCerts(cert);
            PrivateKey key = readKey(need(o, "key"), chain.get(0));
            KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            ks.setKeyEntry("me", key, STORE_PASS, chain.toArray(new Certificate[0]));
            kmf = KeyManagerFactory.getInstance("PKIX");
            kmf.init(ks, STORE_PASS);
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ctx;
    }

    static String need(Map<String, String> o, String k) {
        String v = o.get(k);
        if (v == null) {
            throw new IllegalArgumentException("--" + k + " is required");
        }
        return v;
    }

    static String[] protocols(Map<String, String> o) {
        switch (o.get("tls")) {
            case "1.2":
                return new String[] {"TLSv1.2"};
            case "1.3":
                return new String[] {"TLSv1.3"};
            case "any":
                return new String[] {"TLSv1.3", "TLSv1.2"};
            default:
                throw new IllegalArgumentException("unknown --tls " + o.get("tls"));
        }
    }

    static String readLine(InputStream in) throws IOException {
        StringBuilder sb = new StringBuilder();
        while (true) {
            int c = in.read();
            if (c < 0) {
                throw new IOException("connection closed before a full line (got '" + sb + "')");
            }
            if (c == '\n') {
                return sb.toString().replaceAll("\r$", "");
            }
            sb.append((char) c);
        }
    }

    static void serve(Map<String, String> o) throws Exception {
        SSLContext ctx = context(o);
        int timeout = Integer.parseInt(o.get("timeout")) * 1000;
        try (SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
                .createServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            ss.setNeedClientAuth(true);
            ss.setEnabledProtocols(protocols(o));
            ss.setSoTimeout(timeout);
            System.out.println("LISTENING " + ss.getLocalPort());
            System.out.flush();
            try (SSLSocket s = (SSLSocket) ss.accept()) {
                s.setSoTimeout(timeout);
                s.startHandshake();
                String line = readLine(s.getInputStream());
                OutputStream out = s.getOutputStream();
                out.write(("pong: " + line + "\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
                Certificate[] peer = s.getSession().getPeerCertificates();
                System.out.println("OK server: peer=" + subject((X509Certificate) peer[0])
                        + " chain=" + peer.length + " protocol=" + s.getSession().getProtocol()
                        + " got=" + line);
            }
        }
    }

    static void connect(Map<String, String> o) throws Exception {
        SSLContext ctx = context(o);
        int timeout = Integer.parseInt(o.get("timeout")) * 1000;
        String name = need(o, "name");
        int port = Integer.parseInt(need(o, "port"));
        Socket raw = new Socket();
        raw.connect(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port), timeout);
        raw.setSoTimeout(timeout);
        // Layered on the connected socket with NAME as the peer host, so
        // endpoint identification checks NAME (not 127.0.0.1).
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(raw, name, port, true)) {
            SSLParameters p = s.getSSLParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS");
            p.setServerNames(List.of(new SNIHostName(name)));
            p.setProtocols(protocols(o));
            s.setSSLParameters(p);
            s.startHandshake();
            OutputStream out = s.getOutputStream();
            out.write("ping from java\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
            String reply = readLine(s.getInputStream());
            Certificate[] peer = s.getSession().getPeerCertificates();
            System.out.println("OK client: peer=" + subject((X509Certificate) peer[0])
                    + " chain=" + peer.length + " protocol=" + s.getSession().getProtocol()
                    + " reply=" + reply);
        }
    }
}
