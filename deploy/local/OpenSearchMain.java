// Launcher for codelibs' OpenSearchRunner, run by services.sh in Java's single-file source mode
// (java -cp 'lib/*' OpenSearchMain.java ARGS...). The runner's own main() calls System.exit(1)
// without a word when a node fails to start; this one prints the exception first.
// Arguments are the runner's: -basePath DIR -numOfNode 1 -baseHttpPort P -clusterName X ...
import org.codelibs.opensearch.runner.OpenSearchRunner;

public class OpenSearchMain {
    public static void main(final String[] args) throws Exception {
        final OpenSearchRunner runner = new OpenSearchRunner();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final Exception e) {
                System.err.println("OpenSearchMain: error while closing: " + e);
            }
        }, "newsmon-opensearch-shutdown"));
        try {
            runner.build(args);
        } catch (final Throwable t) {
            System.err.println("OpenSearchMain: OpenSearch failed to start:");
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("OpenSearchMain: nodes started");
        while (!runner.isClosed()) {
            Thread.sleep(2000);
        }
    }
}
