// Java PKIX path validation with revocation on: the chain (leaf first, then
// intermediates) against the trusted root, with every given CRL in a
// CertStore and no network fetching. Built and run by tests/revocation.rs.
//
//   java CrlCheck ROOT CHAIN CRL...
//   prints "OK" (exit 0) or "FAIL reason" (exit 1).

import java.io.FileInputStream;
import java.io.InputStream;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertStore;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;

public class CrlCheck {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.out.println("FAIL usage: CrlCheck ROOT CHAIN CRL...");
            System.exit(2);
        }
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate root;
        try (InputStream in = new FileInputStream(args[0])) {
            root = (X509Certificate) cf.generateCertificate(in);
        }
        List<X509Certificate> chain = new ArrayList<>();
        try (InputStream in = new FileInputStream(args[1])) {
            for (java.security.cert.Certificate c : cf.generateCertificates(in)) {
                chain.add((X509Certificate) c);
            }
        }
        Collection<Object> store = new ArrayList<>(chain);
        for (int i = 2; i < args.length; i++) {
            try (InputStream in = new FileInputStream(args[i])) {
                store.add((X509CRL) cf.generateCRL(in));
            }
        }
        CertPath path = cf.generateCertPath(chain);
        PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
        params.setRevocationEnabled(true);
        params.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(store)));
        try {
            CertPathValidator.getInstance("PKIX").validate(path, params);
            System.out.println("OK");
        } catch (Exception e) {
            System.out.println("FAIL " + String.valueOf(e.getMessage()).replace('\n', ' '));
            System.exit(1);
        }
    }
}
