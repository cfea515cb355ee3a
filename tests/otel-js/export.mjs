// Exports one request's spans with the real OpenTelemetry JavaScript SDK
// over OTLP/HTTP JSON (the exporter's default encoding in Node, sent
// chunked). Usage:
//   node export.mjs URL [xray|w3c] [X-Amzn-Trace-Id of the caller]
// Prints {"trace_id", "server_span_id", "injected"} as JSON on stdout.
import * as api from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { AWSXRayIdGenerator } from '@opentelemetry/id-generator-aws-xray';
import { AWSXRayPropagator } from '@opentelemetry/propagator-aws-xray';

const [url, ids = 'xray', incoming] = process.argv.slice(2);
const provider = new BasicTracerProvider({
  // The SDK's own attributes (telemetry.sdk.*), as NodeSDK would add them.
  resource: defaultResource().merge(resourceFromAttributes({
    'service.name': 'checkout-js',
    'service.version': '3.1.0',
    'cloud.provider': 'aws',
    'cloud.platform': 'aws_lambda',
    'cloud.region': 'eu-west-1',
    'cloud.account.id': '210987654321',
    'faas.name': 'checkout-js-fn',
  })),
  ...(ids === 'xray' ? { idGenerator: new AWSXRayIdGenerator() } : {}),
  spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url }))],
});
const tracer = provider.getTracer('baton.e2e', '1.0.0');
const propagator = new AWSXRayPropagator();
const carrier = incoming ? { 'x-amzn-trace-id': incoming } : {};
const parent = propagator.extract(api.ROOT_CONTEXT, carrier, api.defaultTextMapGetter);

const server = tracer.startSpan('GET /orders/{id}', {
  kind: api.SpanKind.SERVER,
  attributes: {
    'http.request.method': 'GET',
    'url.scheme': 'https',
    'server.address': 'shop.example.com',
    'url.path': '/orders/7',
    'http.route': '/orders/{id}',
    tenant: 'acme',
    'aws.xray.annotations': ['tenant'],
    'app.items': 3,
  },
}, parent);
const inServer = api.trace.setSpan(parent, server);

const validate = tracer.startSpan('validate', { kind: api.SpanKind.INTERNAL }, inServer);
validate.recordException(new TypeError('order 7 has no items'));
validate.setStatus({ code: api.SpanStatusCode.ERROR, message: 'invalid order' });
validate.end();

const call = tracer.startSpan('GET', {
  kind: api.SpanKind.CLIENT,
  attributes: { 'http.request.method': 'GET', 'url.full': 'http://stock.internal:8080/items/7', 'server.address': 'stock.internal' },
}, inServer);
const injected = {};
propagator.inject(api.trace.setSpan(inServer, call), injected, api.defaultTextMapSetter);
call.setAttribute('http.response.status_code', 503);
call.setStatus({ code: api.SpanStatusCode.ERROR });
call.end();

server.setAttribute('http.response.status_code', 500);
server.setStatus({ code: api.SpanStatusCode.ERROR });
server.end();

await provider.forceFlush();
await provider.shutdown();
const { traceId, spanId } = server.spanContext();
console.log(JSON.stringify({ trace_id: traceId, server_span_id: spanId, injected }));
