import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import type { RestBridgeJsonData, RestBridgeQuery, RestBridgeSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, RestBridgeQuery, RestBridgeJsonData, RestBridgeSecureJsonData>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
