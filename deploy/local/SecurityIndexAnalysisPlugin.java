/*
 * The analysis components Elasticsearch's own .security index asks for, for the minimal
 * distribution of Maven Central (integ-test-zip), which has x-pack security but not the
 * analysis-common module. Without them the .security index cannot be created ("Unknown
 * filter type [pattern_capture] for [email]"), and with it no API key. Its "email" analyzer
 * is: tokenizer uax_url_email, filters pattern_capture, lowercase, unique.
 *
 * Built and installed by services.sh for NEWSMON_ES_SECURITY=1 only (javac against the
 * distribution's own jars; the classes are Lucene's). Test infrastructure, not a product.
 */
package org.newsmon.localsearch;

import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.core.LowerCaseFilter;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

public class SecurityIndexAnalysisPlugin extends Plugin implements AnalysisPlugin {

    private static TokenFilterFactory filter(String name, UnaryOperator<TokenStream> wrap) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream in) {
                return wrap.apply(in);
            }
        };
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "pattern_capture", (indexSettings, environment, name, settings) -> {
                List<String> patterns = settings.getAsList("patterns");
                boolean preserveOriginal = settings.getAsBoolean("preserve_original", true);
                Pattern[] compiled = patterns.stream().map(Pattern::compile).toArray(Pattern[]::new);
                return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserveOriginal, compiled));
            },
            "lowercase", (indexSettings, environment, name, settings) -> filter(name, LowerCaseFilter::new),
            "unique", (indexSettings, environment, name, settings) -> filter(name, RemoveDuplicatesTokenFilter::new)
        );
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of(
            "uax_url_email",
            (indexSettings, environment, name, settings) -> TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new)
        );
    }
}
