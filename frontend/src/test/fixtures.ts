import type { DataSourceInstanceSettings, DataSourcePluginMeta, DataSourceSettings } from '@grafana/data';

import { DataSource } from '../datasource';
import type { PreviewResponse, RestBridgeJsonData, RestBridgeSecureJsonData, RuleInfo } from '../types';

export const RULES: RuleInfo[] = [
  {
    id: 'hourly_temperature',
    title: 'Hourly temperature',
    description: 'Open-Meteo hourly forecast for one place',
    format: 'auto',
    params: [
      { name: 'lat', title: 'Latitude', description: 'degrees north', default: '52.52', options: null, pattern: '^-?[0-9]+(\\.[0-9]+)?$', required: false },
      { name: 'lon', title: null, description: null, default: '13.41', options: null, pattern: null, required: false },
      { name: 'city', title: 'City', description: null, default: 'Berlin', options: ['Berlin', 'Paris'], pattern: null, required: true },
    ],
  },
  { id: 'status', title: null, description: 'Service status', format: 'table', params: [] },
];

export const PREVIEW_OK: PreviewResponse = {
  request: {
    method: 'GET',
    url: 'https://api.example.com/v1/forecast?city=Berlin&lat=48.1&lon=13.41',
    headers: [
      ['Accept', 'application/json'],
      ['Authorization', '***'],
    ],
    body: null,
  },
  frames: [
    {
      name: 'hourly_temperature',
      meta: { type: 'timeseries-multi' },
      fields: [
        { name: 'time', type: 'time', labels: null },
        { name: 'temperature', type: 'number', labels: { city: 'Berlin' } },
      ],
      rows: [
        ['2024-01-01T00:00:00Z', 1.5],
        ['2024-01-01T01:00:00Z', 1.25],
      ],
      totalRows: 48,
    },
  ],
  error: null,
};

export function instanceSettings(jsonData: RestBridgeJsonData = {}): DataSourceInstanceSettings<RestBridgeJsonData> {
  return {
    id: 1,
    uid: 'rb-uid',
    type: 'restbridge-rest-datasource',
    name: 'RestBridge',
    meta: { id: 'restbridge-rest-datasource', name: 'RestBridge', type: 'datasource', info: {} } as unknown as DataSourcePluginMeta<RestBridgeJsonData>,
    jsonData,
    access: 'proxy',
    readOnly: false,
  };
}

/** A real DataSource whose resource calls are answered by `resources`. */
export function makeDataSource(resources: {
  rules?: () => Promise<unknown>;
  preview?: (body: unknown) => Promise<unknown>;
}) {
  const ds = new DataSource(instanceSettings());
  const getResource = async (path: string) => {
    if (path === 'rules') {
      return resources.rules ? resources.rules() : { rules: RULES };
    }
    throw { status: 404, data: { error: `no resource '${path}'` } };
  };
  const postResource = async (path: string, body: unknown) => {
    if (path === 'preview') {
      return resources.preview ? resources.preview(body) : PREVIEW_OK;
    }
    throw { status: 404, data: { error: `no resource '${path}'` } };
  };
  ds.getResource = getResource as DataSource['getResource'];
  ds.postResource = postResource as DataSource['postResource'];
  return ds;
}

export function settings(
  jsonData: RestBridgeJsonData = {},
  extra: Partial<DataSourceSettings<RestBridgeJsonData, RestBridgeSecureJsonData>> = {}
): DataSourceSettings<RestBridgeJsonData, RestBridgeSecureJsonData> {
  return {
    id: 1,
    uid: 'rb-uid',
    orgId: 1,
    name: 'RestBridge',
    typeLogoUrl: '',
    type: 'restbridge-rest-datasource',
    typeName: 'RestBridge',
    access: 'proxy',
    url: 'https://api.example.com',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    jsonData,
    secureJsonFields: {},
    readOnly: false,
    withCredentials: false,
    ...extra,
  } as DataSourceSettings<RestBridgeJsonData, RestBridgeSecureJsonData>;
}
